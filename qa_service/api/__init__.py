"""The HTTP API: the app factory and error handling (``app``, the only importer of FastAPI), routes
per area (``routes``), typed request and response bodies (``schemas``), the guards in front of the
routes (``guards``: body limits, rate limits, headers), request metrics (``metrics``) and the chat
widget's files and demo page (``widget``). Routes are thin: they call ``qa_service.answering``.
"""
