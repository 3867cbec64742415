"""The spectra experiment (paper section 4.4): MassBank data, its split by structure, and (later) training."""
