"""The tracking store: where it is (`uri`) and the contract-aware client (`tracker`)."""
