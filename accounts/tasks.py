"""Queue entry points for accounts: load by id, call a service. Nothing else lives here."""

from accounts import webhooks


def deliver_webhook(delivery_id: int) -> str:
    return webhooks.webhook_deliver(delivery_id=delivery_id)


def deliver_due_webhooks() -> int:
    return webhooks.webhook_deliver_due()
