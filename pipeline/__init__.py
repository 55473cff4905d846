"""tunefleet lifecycle: MLflow tracking, registry promotion, promoted-model loading, the CLI."""
