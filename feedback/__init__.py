"""Everything that consumes estimates and decisions: visuals, audio, LSL outlets, recordings."""
