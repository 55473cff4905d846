"""Tracking settings: store URIs and model names that MLflow would refuse late are refused at once."""

from __future__ import annotations

import pytest

from tunefleet.errors import ConfigError


def test_a_tracking_store_and_model_name_mlflow_would_refuse_late_are_refused_at_once() -> None:
    """A file store or another scheme failed inside MLflow, and a model name with '/' or ':'
    at registration, after the whole search."""
    from tunefleet.pipeline.settings import load_tracking_settings

    for uri in ("sqlite:///mlruns.db", "postgresql+psycopg2://u:p@db/mlflow", "http://127.0.0.1:5000", "databricks"):
        assert load_tracking_settings(uri).tracking_uri == uri
    with pytest.raises(ConfigError, match="'./mlruns' is a file store.*sqlite:///mlruns.db"):
        load_tracking_settings("./mlruns")
    with pytest.raises(ConfigError, match="and --tracking-uri: tracking_uri: .*unsupported scheme 'ftp'"):
        load_tracking_settings("ftp://host/x")
    settings = load_tracking_settings("sqlite:///mlruns.db")
    assert settings.model_name("sign") == "tunefleet-sign" and settings.model_name("sign", "mine") == "mine"
    assert settings.model_name("sign", smoke=True) == "tunefleet-sign-smoke"  # never a real search's champion
    assert settings.model_name("sign", "mine", smoke=True) == "mine-smoke"
    for bad in ("team/model", "a:b", " "):
        with pytest.raises(ConfigError, match="must not be empty or hold '/' or ':'"):
            settings.model_name("sign", bad)
    with pytest.raises(ConfigError, match="'tunefleet-data:v2'"):
        settings.model_name("data:v2")  # a file's stem becomes the default name
