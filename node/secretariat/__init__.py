"""The Technical Secretariat (ST): scheduled pulls, regional totals and the monthly brief."""
