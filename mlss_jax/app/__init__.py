"""The application shell: CLI helpers, the pipeline, its report, and where files live."""
