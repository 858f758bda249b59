"""Currency watch: pairs, derived rates and FX rules. Pure: no database, network or clock."""
