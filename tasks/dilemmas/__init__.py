"""Task `dilemmas`: value preferences in everyday dilemmas (DailyDilemmas)."""
