"""Precision/recall, FID, LPIPS, NMI, feature networks, and the truncation sweep."""
