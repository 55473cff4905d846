"""The lifecycle: MLflow tracking (one writer), the baseline, the test, the registry gate, the pyfunc, the CLI."""
