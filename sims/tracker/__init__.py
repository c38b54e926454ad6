"""Simulated issue tracker and wiki (English, with a Chinese translation): a source system.

Incidents are a paginated table whose rows link to detail pages; meeting minutes are a
wiki list whose rows are 0 px high boxes of floated cells (never "visible"). The
reporter, the severity, the attachment's SHA-256 and its download link appear only on a
report's detail page, and the download URL carries the report id only inside its href.
The app answers in the browser's language (``Accept-Language``), serves attachments
gzip-encoded to clients that accept it, and ``GET /_sim/state`` is its ground truth.

``create_app`` (in :mod:`sims.tracker.app`) builds the Flask application;
``python -m sims.tracker`` serves it on loopback.
"""
