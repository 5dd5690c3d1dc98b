"""The driver on top of the experiments: profiles, the runner, the choices it records, the resume state of a
run folder, the multi-label and photograph inputs, and the Lite0 evidence; its storage is
``empirical.storage``."""
