"""The router zoo of the character-LM family: standard routers from the MoE literature."""
