"""Running prompts through models: engines, sampling, parsing, resumable runs."""
