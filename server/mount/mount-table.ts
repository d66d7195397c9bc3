/** mountbody: who mounted what (informational only, as in every MOUNT server: clients may never UMNT). */
export interface MountEntry {
  hostname: string;
  directory: string;
}

/** The in-memory mount list DUMP reports; MNT adds, UMNT/UMNTALL remove. Lost on restart, like rmtab-less mountd. */
export class MountTable {
  private readonly entries = new Map<string, MountEntry>();

  private static key(e: MountEntry): string {
    return `${e.hostname}\0${e.directory}`;
  }

  add(e: MountEntry): void {
    this.entries.set(MountTable.key(e), e);
  }

  remove(e: MountEntry): void {
    this.entries.delete(MountTable.key(e));
  }

  removeHost(hostname: string): void {
    for (const [k, e] of this.entries) if (e.hostname === hostname) this.entries.delete(k);
  }

  list(): MountEntry[] {
    return [...this.entries.values()];
  }
}
