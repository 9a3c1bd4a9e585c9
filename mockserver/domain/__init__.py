"""The simulated building: owners, studios, intercoms, codes, customers and a clock. No HTTP in here."""
