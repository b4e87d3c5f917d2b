"""The API's routes, one module per area: questions (ask, feedback), the FAQ, operations (health,
readiness, metrics) and admin (reload). Each builds an ``APIRouter`` from the settings; routes are
thin and call ``qa_service.answering``."""
