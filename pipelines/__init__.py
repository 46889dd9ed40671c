"""Alignment methods (plugins): one readable file per method plus presets/<method>/<size>.yaml."""
