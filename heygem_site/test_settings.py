"""Settings for the test suite: the regular settings with DJANGO_ENV=test.

pytest imports settings before any conftest runs, so the environment is set here, ahead of
the settings package.
"""

import os

os.environ.setdefault("DJANGO_ENV", "test")

from heygem_site.settings import *  # noqa: F403
