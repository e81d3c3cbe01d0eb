"""Notifications to subscribers (DESIGN §11): the outbox, templates per locale, senders.

A notice names its recipient by plain values — address, locale, channel and
the ids it belongs to — never by a customer object, so any floor above can
write one: `services.notify` adds the row to the caller's transaction,
`mailer` renders and sends due rows after commit with retries, `staff` lists
and retries dead letters for the console and API.
"""
