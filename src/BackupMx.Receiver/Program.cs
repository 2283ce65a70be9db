// Placeholder until the Azure-mode receiver is composed.
return 0;
