from tunefleet.pipeline.cli import entry

entry()
