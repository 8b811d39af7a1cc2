"""The `cash_comfort` task: how models price a user's inconvenience (Cedro et al. 2025)."""
