"""Everything that produces chunks: BrainFlow headbands, LSL, recorded files, the simulated patient."""
