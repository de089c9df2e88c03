"""The seed range of sampling: torch.Generator takes 64-bit seeds. A module of its own, light enough for the
command line to read before it imports torch."""
MAX_SEED = 2**64 - 1
