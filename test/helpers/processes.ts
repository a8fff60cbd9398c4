/** The real entry points as child processes (shared with the fault checker in scripts/faults). */
export * from '../../scripts/faults/processes.js';
