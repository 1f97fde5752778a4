"""Predicting whole images and volumes with nets trained on tiles and patches."""
