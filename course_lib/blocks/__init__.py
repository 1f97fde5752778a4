"""Building blocks the models share: conv blocks, attention, up-sampling."""
