"""Planning: from what the options name (resolve: the metadata, the model and its kind, the license) to
the plan (make: every decision, checked up front)."""
