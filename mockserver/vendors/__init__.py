"""One thin adapter per vendor API: functions named after the contract's operationIds (resolved by
Connexion), and the vendor's error bodies."""
