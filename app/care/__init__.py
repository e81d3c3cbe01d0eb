"""Customer service (DESIGN §11): tickets, SLAs and regulator escalations.

`models` (tables, labels, SLA defaults), `sla` (working-time arithmetic),
`sla_calendar` (public holidays and make-up working days), `targets` (the
SLA table), `tickets` (opening, reading, lists),
`conversation` (replies and their notices), `workflow` (status, assignment,
regulator escalation, satisfaction), `attachments` (files), `breaches` and
`system_tickets` (the jobs' work), `figures` (dashboard numbers). The 360°
customer view is assembled in the console from each package's readers.
Notices to subscribers are written by app/notifications.
"""
