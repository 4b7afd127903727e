"""Updaters of the facts family: rules that write LoRA factors while reading hidden states."""
