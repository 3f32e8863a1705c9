"""State stores: where upload records and small shared mappings live."""
