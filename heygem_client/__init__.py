"""HeyGem Studio's command-line client and a tiny library for scripts.

Standard library only, so it runs wherever Python 3.11 does::

    python -m heygem_client submit --avatar a.mp4 --audio-dir ./audios --project Launch --wait
    python -m heygem_client export --project Launch --out bundle.zip
    python -m heygem_client status [--batch 12]

The server, token and organization come from ``--url`` / ``--token`` / ``--org`` or from
``HEYGEM_URL`` / ``HEYGEM_TOKEN`` / ``HEYGEM_ORG``. ``heygem_client.webhooks.verify`` checks
the signature of a webhook delivery in a receiver.
"""

__version__ = "1.0.0"
