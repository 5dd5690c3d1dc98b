"""The driver on top of the experiments: the chunked loop (``chunked``) that runs each experiment's kernel
chunk by chunk, resumably (``randomization``, ``faithfulness``, ``rewards``, ``activations``: the
``run_<experiment>`` functions), profiles, the runner, the choices it records, the resume state of a run
folder, the multi-label and photograph inputs, and the Lite0 evidence; its storage is
``empirical.storage``."""
