// The SignalR system's .NET server (bench/signalr/): where its build lands, and building it
// once before a run. Without dotnet the system is skipped, with a message saying why.

import { execFileSync } from 'node:child_process';
import path from 'node:path';

const project = path.join(import.meta.dirname, '../signalr');

export function signalrDll(): string {
  return path.join(project, 'bin/Release/net10.0/BenchSignalR.dll');
}

/** Build the hub (release); undefined if it is ready, else why the system cannot run. */
export function buildSignalr(): string | undefined {
  try {
    execFileSync('dotnet', ['--version'], { stdio: 'pipe' });
  } catch {
    return 'dotnet not found: install the .NET SDK (8 or later, with ASP.NET Core) to run the signalr system';
  }
  try {
    execFileSync('dotnet', ['build', '-c', 'Release', '-nologo', '-v', 'q'], { cwd: project, stdio: 'pipe', timeout: 300_000 });
  } catch (err) {
    const e = err as { stdout?: Buffer; message: string };
    return `dotnet build of bench/signalr failed: ${e.stdout?.toString().slice(-800) ?? e.message}`;
  }
  return undefined;
}
