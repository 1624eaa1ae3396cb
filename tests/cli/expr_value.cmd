expr '1 + 2'
