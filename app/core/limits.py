"""How long free text may be: one table for the services, which enforce it, and the forms,
which say it (a `maxlength` attribute and a message beside the field).

* A person's name: 60 characters. A Chinese name has two to four, a name as
  printed in a passport rarely passes 40.
* An e-mail address: 254, the longest a mail server accepts (RFC 5321).
* The name of a thing staff create (a host carrier, a voucher batch, an API
  key): 80.
* A reference a person types or reads out (a receipt or bank transfer number,
  a voucher serial): 40.
* A memo beside a payment: 200. A reason or a note (for an audit record, a
  refund, a dispute): 500.

Plans keep theirs beside their terms (`plans.terms`: names 40, descriptions
500). A column may be wider than its limit: the limit is checked by the
service, so rows written before it still read.
"""

from __future__ import annotations

PERSON_NAME = 60
EMAIL = 254
LABEL = 80
REFERENCE = 40
MEMO = 200
NOTE = 500
