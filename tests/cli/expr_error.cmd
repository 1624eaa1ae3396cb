expr '1 / 0'
