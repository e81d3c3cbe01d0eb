"""Payments, refunds and Stripe webhook events

Named CHECKs: amounts positive, known methods / purposes / statuses /
reasons, a payment's credited part between 0 and its amount. UNIQUE:
(method, reference) for offline payments, Stripe session and refund ids.
`stripe_event.id` is the primary key that makes webhooks idempotent.
`ledger_account.balance_minor` becomes 64-bit: a cash account sums every
customer's money and would overflow 32 bits (21,474,836.47).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import app.core.db

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('ledger_account', schema=None) as batch_op:
        batch_op.alter_column('balance_minor', existing_type=sa.Integer(), type_=sa.BigInteger(), existing_nullable=False)
    op.create_table('stripe_event',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('type', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('outcome', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('received_at', app.core.db.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stripe_event'))
    )
    op.create_table('payment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('method', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('purpose', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('amount_minor', sa.Integer(), nullable=False),
    sa.Column('currency', sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
    sa.Column('credited_minor', sa.Integer(), nullable=False),
    sa.Column('reference', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('stripe_session_id', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
    sa.Column('stripe_payment_intent_id', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
    sa.Column('checkout_url', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
    sa.Column('journal_entry_id', sa.Integer(), nullable=True),
    sa.Column('memo', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('created_at', app.core.db.UTCDateTime(), nullable=False),
    sa.Column('completed_at', app.core.db.UTCDateTime(), nullable=True),
    sa.CheckConstraint("method IN ('stripe', 'cash', 'bank_transfer')", name=op.f('ck_payment_method_known')),
    sa.CheckConstraint("purpose IN ('topup', 'purchase')", name=op.f('ck_payment_purpose_known')),
    sa.CheckConstraint("status IN ('created', 'pending', 'succeeded', 'failed', 'expired')", name=op.f('ck_payment_status_known')),
    sa.CheckConstraint('amount_minor > 0', name=op.f('ck_payment_amount_positive')),
    sa.CheckConstraint('credited_minor >= 0 AND credited_minor <= amount_minor', name=op.f('ck_payment_credited_in_range')),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], name=op.f('fk_payment_customer_id_customer')),
    sa.ForeignKeyConstraint(['journal_entry_id'], ['journal_entry.id'], name=op.f('fk_payment_journal_entry_id_journal_entry')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payment')),
    sa.UniqueConstraint('method', 'reference', name=op.f('uq_payment_method_reference')),
    sa.UniqueConstraint('stripe_session_id', name=op.f('uq_payment_stripe_session_id'))
    )
    with op.batch_alter_table('payment', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payment_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_payment_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_payment_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_payment_stripe_payment_intent_id'), ['stripe_payment_intent_id'], unique=False)

    op.create_table('refund',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('payment_id', sa.Integer(), nullable=True),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('amount_minor', sa.Integer(), nullable=False),
    sa.Column('currency', sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
    sa.Column('stripe_refund_id', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('note', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('journal_entry_id', sa.Integer(), nullable=True),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('created_at', app.core.db.UTCDateTime(), nullable=False),
    sa.Column('updated_at', app.core.db.UTCDateTime(), nullable=False),
    sa.Column('completed_at', app.core.db.UTCDateTime(), nullable=True),
    sa.CheckConstraint("reason IN ('cap_excess', 'staff', 'exit')", name=op.f('ck_refund_reason_known')),
    sa.CheckConstraint("status IN ('pending', 'processing', 'succeeded', 'failed', 'paid_offline')", name=op.f('ck_refund_status_known')),
    sa.CheckConstraint('amount_minor > 0', name=op.f('ck_refund_amount_positive')),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], name=op.f('fk_refund_customer_id_customer')),
    sa.ForeignKeyConstraint(['journal_entry_id'], ['journal_entry.id'], name=op.f('fk_refund_journal_entry_id_journal_entry')),
    sa.ForeignKeyConstraint(['payment_id'], ['payment.id'], name=op.f('fk_refund_payment_id_payment')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_refund')),
    sa.UniqueConstraint('stripe_refund_id', name=op.f('uq_refund_stripe_refund_id'))
    )
    with op.batch_alter_table('refund', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_refund_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_refund_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_refund_payment_id'), ['payment_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_refund_status'), ['status'], unique=False)

    # ### end Alembic commands ###


def downgrade() -> None:
    # ### commands auto generated by Alembic - please adjust! ###
    with op.batch_alter_table('refund', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_refund_status'))
        batch_op.drop_index(batch_op.f('ix_refund_payment_id'))
        batch_op.drop_index(batch_op.f('ix_refund_customer_id'))
        batch_op.drop_index(batch_op.f('ix_refund_created_at'))

    op.drop_table('refund')
    with op.batch_alter_table('payment', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_payment_stripe_payment_intent_id'))
        batch_op.drop_index(batch_op.f('ix_payment_status'))
        batch_op.drop_index(batch_op.f('ix_payment_customer_id'))
        batch_op.drop_index(batch_op.f('ix_payment_created_at'))

    op.drop_table('payment')
    op.drop_table('stripe_event')
    with op.batch_alter_table('ledger_account', schema=None) as batch_op:
        batch_op.alter_column('balance_minor', existing_type=sa.BigInteger(), type_=sa.Integer(), existing_nullable=False)
