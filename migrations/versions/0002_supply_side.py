"""Supply side: host carriers, rate cards, golden tiers, number blocks, phone numbers, SIMs, plans, add-ons

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


import app.core.db

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('addon',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('names', sa.JSON(), nullable=False),
    sa.Column('currency', sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
    sa.Column('price_minor', sa.Integer(), nullable=False),
    sa.Column('data_mb', sa.Integer(), nullable=False),
    sa.Column('created_at', app.core.db.UTCDateTime(), nullable=False),
    sa.CheckConstraint("status IN ('draft', 'published', 'retired')", name=op.f('ck_addon_status_known')),
    sa.CheckConstraint('price_minor >= 0 AND data_mb >= 1', name=op.f('ck_addon_amounts_valid')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_addon')),
    sa.UniqueConstraint('code', name=op.f('uq_addon_code'))
    )
    op.create_table('golden_tier',
    sa.Column('code', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('surcharge_minor', sa.Integer(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('updated_at', app.core.db.UTCDateTime(), nullable=False),
    sa.CheckConstraint('surcharge_minor >= 0', name=op.f('ck_golden_tier_surcharge_not_negative')),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_golden_tier'))
    )
    op.create_table('host_carrier',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('currency', sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
    sa.Column('timezone', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('provisioning', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('provisioning_url', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.Column('created_at', app.core.db.UTCDateTime(), nullable=False),
    sa.CheckConstraint("provisioning <> 'http' OR provisioning_url IS NOT NULL", name=op.f('ck_host_carrier_http_url')),
    sa.CheckConstraint("provisioning IN ('log', 'http')", name=op.f('ck_host_carrier_provisioning_known')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_host_carrier')),
    sa.UniqueConstraint('code', name=op.f('uq_host_carrier_code'))
    )
    op.create_table('number_block',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('host_id', sa.Integer(), nullable=False),
    sa.Column('first', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('last', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('received_at', app.core.db.UTCDateTime(), nullable=False),
    sa.CheckConstraint('size >= 1 AND size <= 1000000', name=op.f('ck_number_block_size_range')),
    sa.ForeignKeyConstraint(['host_id'], ['host_carrier.id'], name=op.f('fk_number_block_host_id_host_carrier')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_number_block')),
    sa.UniqueConstraint('host_id', 'first', name=op.f('uq_number_block_host_id_first'))
    )
    with op.batch_alter_table('number_block', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_number_block_host_id'), ['host_id'], unique=False)

    op.create_table('plan',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('names', sa.JSON(), nullable=False),
    sa.Column('descriptions', sa.JSON(), nullable=False),
    sa.Column('host_id', sa.Integer(), nullable=False),
    sa.Column('currency', sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
    sa.Column('price_minor', sa.Integer(), nullable=False),
    sa.Column('validity_days', sa.Integer(), nullable=False),
    sa.Column('data_mb', sa.Integer(), nullable=False),
    sa.Column('voice_min', sa.Integer(), nullable=False),
    sa.Column('sms', sa.Integer(), nullable=False),
    sa.Column('overage_data_per_mb_minor', sa.Integer(), nullable=False),
    sa.Column('overage_voice_per_min_minor', sa.Integer(), nullable=False),
    sa.Column('overage_sms_minor', sa.Integer(), nullable=False),
    sa.Column('voice_increment_s', sa.Integer(), nullable=False),
    sa.Column('auto_renew_default', sa.Boolean(), nullable=False),
    sa.Column('margin_override', sa.Boolean(), nullable=False),
    sa.Column('created_at', app.core.db.UTCDateTime(), nullable=False),
    sa.Column('published_at', app.core.db.UTCDateTime(), nullable=True),
    sa.Column('retired_at', app.core.db.UTCDateTime(), nullable=True),
    sa.CheckConstraint("status IN ('draft', 'published', 'retired')", name=op.f('ck_plan_status_known')),
    sa.CheckConstraint('price_minor >= 0 AND data_mb >= 0 AND voice_min >= 0 AND sms >= 0 AND overage_data_per_mb_minor >= 0 AND overage_voice_per_min_minor >= 0 AND overage_sms_minor >= 0', name=op.f('ck_plan_amounts_not_negative')),
    sa.CheckConstraint('validity_days >= 1 AND validity_days <= 730', name=op.f('ck_plan_validity_range')),
    sa.CheckConstraint('voice_increment_s >= 1', name=op.f('ck_plan_voice_increment_positive')),
    sa.ForeignKeyConstraint(['host_id'], ['host_carrier.id'], name=op.f('fk_plan_host_id_host_carrier')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_plan')),
    sa.UniqueConstraint('code', 'version', name=op.f('uq_plan_code_version'))
    )
    with op.batch_alter_table('plan', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_plan_code'), ['code'], unique=False)
        batch_op.create_index(batch_op.f('ix_plan_host_id'), ['host_id'], unique=False)
        batch_op.create_index('uq_plan_one_published', ['code'], unique=True, sqlite_where=sa.text("status = 'published'"), postgresql_where=sa.text("status = 'published'"))

    op.create_table('rate_card',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('host_id', sa.Integer(), nullable=False),
    sa.Column('effective_from', sa.Date(), nullable=False),
    sa.Column('data_per_mb_micro', sa.Integer(), nullable=False),
    sa.Column('voice_per_min_micro', sa.Integer(), nullable=False),
    sa.Column('sms_per_msg_micro', sa.Integer(), nullable=False),
    sa.Column('line_per_month_micro', sa.Integer(), nullable=False),
    sa.Column('number_per_month_micro', sa.Integer(), nullable=False),
    sa.Column('retail_data_per_mb_micro', sa.Integer(), nullable=False),
    sa.Column('retail_voice_per_min_micro', sa.Integer(), nullable=False),
    sa.Column('retail_sms_per_msg_micro', sa.Integer(), nullable=False),
    sa.Column('retail_line_per_month_micro', sa.Integer(), nullable=False),
    sa.Column('retail_number_per_month_micro', sa.Integer(), nullable=False),
    sa.Column('created_at', app.core.db.UTCDateTime(), nullable=False),
    sa.CheckConstraint('data_per_mb_micro >= 0 AND voice_per_min_micro >= 0 AND sms_per_msg_micro >= 0 AND line_per_month_micro >= 0 AND number_per_month_micro >= 0 AND retail_data_per_mb_micro >= 0 AND retail_voice_per_min_micro >= 0 AND retail_sms_per_msg_micro >= 0 AND retail_line_per_month_micro >= 0 AND retail_number_per_month_micro >= 0', name=op.f('ck_rate_card_prices_not_negative')),
    sa.ForeignKeyConstraint(['host_id'], ['host_carrier.id'], name=op.f('fk_rate_card_host_id_host_carrier')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rate_card')),
    sa.UniqueConstraint('host_id', 'effective_from', name=op.f('uq_rate_card_host_id_effective_from'))
    )
    with op.batch_alter_table('rate_card', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_rate_card_host_id'), ['host_id'], unique=False)

    op.create_table('sim',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('iccid', sqlmodel.sql.sqltypes.AutoString(length=22), nullable=False),
    sa.Column('imsi', sqlmodel.sql.sqltypes.AutoString(length=15), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('lpa', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
    sa.Column('host_id', sa.Integer(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('created_at', app.core.db.UTCDateTime(), nullable=False),
    sa.Column('status_changed_at', app.core.db.UTCDateTime(), nullable=False),
    sa.CheckConstraint("kind <> 'esim' OR lpa IS NOT NULL", name=op.f('ck_sim_esim_has_lpa')),
    sa.CheckConstraint("kind IN ('physical', 'esim')", name=op.f('ck_sim_kind_known')),
    sa.CheckConstraint("status IN ('in_stock', 'assigned', 'active', 'blocked', 'retired')", name=op.f('ck_sim_status_known')),
    sa.ForeignKeyConstraint(['host_id'], ['host_carrier.id'], name=op.f('fk_sim_host_id_host_carrier')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sim')),
    sa.UniqueConstraint('iccid', name=op.f('uq_sim_iccid')),
    sa.UniqueConstraint('imsi', name=op.f('uq_sim_imsi'))
    )
    with op.batch_alter_table('sim', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sim_host_id'), ['host_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_sim_status'), ['status'], unique=False)

    op.create_table('phone_number',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('msisdn', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('msisdn_reversed', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('block_id', sa.Integer(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
    sa.Column('tier', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
    sa.Column('surcharge_minor', sa.Integer(), nullable=False),
    sa.Column('reserved_until', app.core.db.UTCDateTime(), nullable=True),
    sa.Column('reserved_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('quarantine_until', app.core.db.UTCDateTime(), nullable=True),
    sa.Column('status_changed_at', app.core.db.UTCDateTime(), nullable=False),
    sa.CheckConstraint("status <> 'reserved' OR (reserved_until IS NOT NULL AND reserved_by IS NOT NULL)", name=op.f('ck_phone_number_reservation_complete')),
    sa.CheckConstraint("status IN ('available', 'reserved', 'assigned', 'quarantined', 'ported_out', 'returned')", name=op.f('ck_phone_number_status_known')),
    sa.CheckConstraint('surcharge_minor >= 0', name=op.f('ck_phone_number_surcharge_not_negative')),
    sa.ForeignKeyConstraint(['block_id'], ['number_block.id'], name=op.f('fk_phone_number_block_id_number_block')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_phone_number')),
    sa.UniqueConstraint('msisdn', name=op.f('uq_phone_number_msisdn'))
    )
    with op.batch_alter_table('phone_number', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_phone_number_block_id'), ['block_id'], unique=False)
        batch_op.create_index('ix_phone_number_msisdn_reversed', ['msisdn_reversed'], unique=False)
        batch_op.create_index('ix_phone_number_status_msisdn', ['status', 'msisdn'], unique=False)
        batch_op.create_index('ix_phone_number_tier_status', ['tier', 'status'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('phone_number', schema=None) as batch_op:
        batch_op.drop_index('ix_phone_number_tier_status')
        batch_op.drop_index('ix_phone_number_status_msisdn')
        batch_op.drop_index('ix_phone_number_msisdn_reversed')
        batch_op.drop_index(batch_op.f('ix_phone_number_block_id'))

    op.drop_table('phone_number')
    with op.batch_alter_table('sim', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sim_status'))
        batch_op.drop_index(batch_op.f('ix_sim_host_id'))

    op.drop_table('sim')
    with op.batch_alter_table('rate_card', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_rate_card_host_id'))

    op.drop_table('rate_card')
    with op.batch_alter_table('plan', schema=None) as batch_op:
        batch_op.drop_index('uq_plan_one_published', sqlite_where=sa.text("status = 'published'"), postgresql_where=sa.text("status = 'published'"))
        batch_op.drop_index(batch_op.f('ix_plan_host_id'))
        batch_op.drop_index(batch_op.f('ix_plan_code'))

    op.drop_table('plan')
    with op.batch_alter_table('number_block', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_number_block_host_id'))

    op.drop_table('number_block')
    op.drop_table('host_carrier')
    op.drop_table('golden_tier')
    op.drop_table('addon')
