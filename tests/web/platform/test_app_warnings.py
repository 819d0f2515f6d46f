"""The app builds without any warning (deprecations included), so `filterwarnings = error` stays honest."""

import warnings

from web.app import create_app


def test_app_builds_without_warnings(make_settings):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        create_app(make_settings(), start_jobs=False)
