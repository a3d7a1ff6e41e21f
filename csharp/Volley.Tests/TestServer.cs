// Starts a real Volley server (Node, from this repository) for the tests and stops it after.

using System;
using System.Diagnostics;
using System.IO;
using System.Threading.Tasks;

namespace Volley.Tests;

public sealed class NodeServer : IAsyncDisposable
{
    readonly Process _proc;
    public int Port { get; }
    public string Url => $"ws://127.0.0.1:{Port}/";
    public System.Text.StringBuilder Log { get; } = new();

    NodeServer(Process proc, int port)
    {
        _proc = proc;
        Port = port;
    }

    /// <summary>The repository root: the directory holding package.json above the test binaries.</summary>
    public static string RepoRoot
    {
        get
        {
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            while (dir != null && !(File.Exists(Path.Combine(dir.FullName, "package.json")) && Directory.Exists(Path.Combine(dir.FullName, "csharp"))))
                dir = dir.Parent;
            return dir?.FullName ?? throw new InvalidOperationException("repository root not found above " + AppContext.BaseDirectory);
        }
    }

    /// <summary>Where the conformance kit lives: the repository (after the merge), or VOLLEY_KIT_ROOT.</summary>
    public static string KitRoot => Environment.GetEnvironmentVariable("VOLLEY_KIT_ROOT") is { Length: > 0 } k ? k : RepoRoot;

    /// <summary>Runs `tsx script args` from root; waits for "LISTENING port".</summary>
    public static Task<NodeServer> StartAsync(string root, string script, string args = "") =>
        StartAsync(root, script, args + " --port 0", null, new System.Text.RegularExpressions.Regex(@"^LISTENING (\d+)"));

    /// <summary>Runs `tsx script args`; the port is read from the first stdout line matching <paramref name="ready"/>.</summary>
    public static async Task<NodeServer> StartAsync(string root, string script, string args, System.Collections.Generic.Dictionary<string, string>? env, System.Text.RegularExpressions.Regex ready)
    {
        var tsx = Path.Combine(root, "node_modules", ".bin", "tsx");
        if (!File.Exists(tsx)) throw new InvalidOperationException($"{tsx} missing: run npm install in {root}");
        var psi = new ProcessStartInfo(tsx, $"{script} {args}")
        {
            WorkingDirectory = root,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true, // the server exits when this closes (test process gone)
            UseShellExecute = false,
        };
        if (env != null) foreach (var kv in env) psi.Environment[kv.Key] = kv.Value;
        var proc = Process.Start(psi)!;
        var log = new System.Text.StringBuilder();
        var started = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        proc.OutputDataReceived += (_, e) =>
        {
            if (e.Data == null) { started.TrySetException(new InvalidOperationException("server exited: " + log)); return; }
            lock (log) log.AppendLine(e.Data);
            var m = ready.Match(e.Data);
            if (m.Success && int.TryParse(m.Groups[1].Value, out var port)) started.TrySetResult(port);
        };
        proc.ErrorDataReceived += (_, e) => { if (e.Data != null) lock (log) log.AppendLine(e.Data); };
        proc.BeginOutputReadLine();
        proc.BeginErrorReadLine();
        var done = await Task.WhenAny(started.Task, Task.Delay(30_000));
        if (done != started.Task)
        {
            try { proc.Kill(true); } catch { }
            throw new TimeoutException("server did not print LISTENING within 30 s: " + log);
        }
        var s = new NodeServer(proc, await started.Task);
        lock (log) s.Log.Append(log);
        return s;
    }

    public static Task<NodeServer> StartOwnAsync(string args = "") =>
        StartAsync(RepoRoot, "csharp/Volley.Tests/server/test-server.ts", args);

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_proc.HasExited)
            {
                _proc.Kill(true);
                await _proc.WaitForExitAsync();
            }
        }
        catch { }
        _proc.Dispose();
    }
}

/// <summary>One server shared by a test class.</summary>
public sealed class OwnServerFixture : Xunit.IAsyncLifetime
{
    public NodeServer Server { get; private set; } = null!;
    public async Task InitializeAsync() => Server = await NodeServer.StartOwnAsync();
    public async Task DisposeAsync() => await Server.DisposeAsync();
}

public static class T
{
    /// <summary>A fresh uid per client, so tests sharing a server never collide.</summary>
    public static string Uid(string prefix = "t") => prefix + Guid.NewGuid().ToString("N").Substring(0, 10);

    public static VolleyClientOptions Opts(string? token = null, Action<VolleyClientOptions>? tweak = null)
    {
        var o = new VolleyClientOptions { Token = token ?? Uid(), ConnectTimeout = TimeSpan.FromSeconds(5) };
        o.Reconnect.InitialDelay = TimeSpan.FromMilliseconds(50);
        o.Reconnect.MaxDelay = TimeSpan.FromMilliseconds(500);
        tweak?.Invoke(o);
        return o;
    }

    public static async Task<bool> Until(Func<bool> cond, int ms = 5000)
    {
        var sw = Stopwatch.StartNew();
        while (!cond())
        {
            if (sw.ElapsedMilliseconds > ms) return false;
            await Task.Delay(10);
        }
        return true;
    }

    /// <summary>As <see cref="Until"/>, for a condition that asks the server.</summary>
    public static async Task<bool> UntilAsync(Func<Task<bool>> cond, int ms = 3000)
    {
        var sw = Stopwatch.StartNew();
        while (!await cond())
        {
            if (sw.ElapsedMilliseconds > ms) return false;
            await Task.Delay(20);
        }
        return true;
    }
}
