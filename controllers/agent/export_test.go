package agent

// NoStagedCopies is noStagedCopies for the external test package's specs.
const NoStagedCopies = noStagedCopies
