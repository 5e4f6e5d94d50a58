"""The shipped rule packs, installed as package data (slarules.rules); see README."""
