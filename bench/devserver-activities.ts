/** The benchmark's one activity: as cheap as possible, so the numbers measure the server, not the work. */
export function createBenchActivities() {
  return {
    async echo(value: string): Promise<string> {
      return value;
    },
  };
}

export type BenchActivities = ReturnType<typeof createBenchActivities>;
