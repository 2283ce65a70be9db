// Placeholder until the embedded host is composed.
return 0;
