"""HTTP controllers, one per resource."""

from service.routes.admin import AdminController
from service.routes.health import HealthController
from service.routes.scores import ScoreController
from service.routes.webhooks import WebhookController

__all__ = ["AdminController", "HealthController", "ScoreController", "WebhookController"]
