"""The application layer: YAML configs, run folders, planning and dry runs, reports, comparisons, figures and
the ``qportfolio`` command. It calls the core through its public API and adds what users keep on disk."""
