"""Customer service (DESIGN §11): tickets, SLAs and regulator escalations, the 360° view.

Notices to subscribers are written by app/notifications; this package is for
the service staff give them.
"""
