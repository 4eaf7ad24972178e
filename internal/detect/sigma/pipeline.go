package sigma

import (
	"strconv"
	"strings"

	"github.com/mamori-soc/mamori/internal/event"
)

// This file is the "pipeline": which events a logsource covers (routing)
// and which event field a Sigma field name reads (mapping). PIPELINE.md
// documents the same tables for people; keep the two in step.

// Logsource is a rule's logsource as written (lower-cased).
type Logsource struct {
	Product    string
	Category   string
	Service    string
	Definition string
}

func (l Logsource) String() string {
	d := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	return d(l.Product) + "/" + d(l.Category) + "/" + d(l.Service)
}

// Variant names a field mapping of one logsource that depends on the
// event's source: process_creation from Sysmon event 1 (variant "") or
// from Security event 4688 (variantAudit, sigma-cli's windows-audit
// field names).
const variantAudit = "audit"

// ProductMamori is the product of Mamori's own rules; they run on every
// event and name ECS fields directly.
const ProductMamori = "mamori"

// serviceChannels maps Sigma Windows services to event log channels
// (pySigma's windows pipeline, plus the services the SigmaHQ rules use).
var serviceChannels = map[string][]string{
	"application":            {"Application"},
	"application-experience": {"Microsoft-Windows-Application-Experience/Program-Telemetry", "Microsoft-Windows-Application-Experience/Program-Compatibility-Assistant"},
	"applocker":              {"Microsoft-Windows-AppLocker/EXE and DLL", "Microsoft-Windows-AppLocker/MSI and Script", "Microsoft-Windows-AppLocker/Packaged app-Deployment", "Microsoft-Windows-AppLocker/Packaged app-Execution"},
	"appmodel-runtime":       {"Microsoft-Windows-AppModel-Runtime/Admin"},
	"appxdeployment-server":  {"Microsoft-Windows-AppXDeploymentServer/Operational"},
	"appxpackaging-om":       {"Microsoft-Windows-AppxPackaging/Operational"},
	"bitlocker":              {"Microsoft-Windows-BitLocker/BitLocker Management"},
	"bits-client":            {"Microsoft-Windows-Bits-Client/Operational"},
	"capi2":                  {"Microsoft-Windows-CAPI2/Operational"},
	"certificateservicesclient-lifecycle-system": {"Microsoft-Windows-CertificateServicesClient-Lifecycle-System/Operational"},
	"codeintegrity-operational":                  {"Microsoft-Windows-CodeIntegrity/Operational"},
	"dhcp":                                       {"Microsoft-Windows-DHCP-Server/Operational"},
	"diagnosis-scripted":                         {"Microsoft-Windows-Diagnosis-Scripted/Operational"},
	"dns-client":                                 {"Microsoft-Windows-DNS Client Events/Operational"},
	"dns-server":                                 {"DNS Server"},
	"dns-server-analytic":                        {"Microsoft-Windows-DNS-Server/Analytical"},
	"dns-server-audit":                           {"Microsoft-Windows-DNS-Server/Audit"},
	"driver-framework":                           {"Microsoft-Windows-DriverFrameworks-UserMode/Operational"},
	"firewall-as":                                {"Microsoft-Windows-Windows Firewall With Advanced Security/Firewall"},
	"iis-configuration":                          {"Microsoft-IIS-Configuration/Operational"},
	"ldap":                                       {"Microsoft-Windows-LDAP-Client/Debug"},
	"ldap_debug":                                 {"Microsoft-Windows-LDAP-Client/Debug"},
	"lsa-server":                                 {"Microsoft-Windows-LSA/Operational"},
	"microsoft-servicebus-client":                {"Microsoft-ServiceBus-Client"},
	"msexchange-management":                      {"MSExchange Management"},
	"ntlm":                                       {"Microsoft-Windows-NTLM/Operational"},
	"openssh":                                    {"OpenSSH/Operational"},
	"powershell":                                 {"Microsoft-Windows-PowerShell/Operational", "PowerShellCore/Operational"},
	"powershell-classic":                         {"Windows PowerShell"},
	"printservice-admin":                         {"Microsoft-Windows-PrintService/Admin"},
	"printservice-operational":                   {"Microsoft-Windows-PrintService/Operational"},
	"security":                                   {"Security"},
	"security-mitigations":                       {"Microsoft-Windows-Security-Mitigations/Kernel Mode", "Microsoft-Windows-Security-Mitigations/User Mode"},
	"sense":                                      {"Microsoft-Windows-SENSE/Operational"},
	"shell-core":                                 {"Microsoft-Windows-Shell-Core/Operational"},
	"smbclient-connectivity":                     {"Microsoft-Windows-SmbClient/Connectivity"},
	"smbclient-security":                         {"Microsoft-Windows-SmbClient/Security"},
	"smbserver-connectivity":                     {"Microsoft-Windows-SMBServer/Connectivity"},
	"sysmon":                                     {"Microsoft-Windows-Sysmon/Operational"},
	"system":                                     {"System"},
	"taskscheduler":                              {"Microsoft-Windows-TaskScheduler/Operational"},
	"terminalservices-localsessionmanager":       {"Microsoft-Windows-TerminalServices-LocalSessionManager/Operational"},
	"vhdmp":                                      {"Microsoft-Windows-VHDMP/Operational"},
	"windefend":                                  {"Microsoft-Windows-Windows Defender/Operational"},
	"wmi":                                        {"Microsoft-Windows-WMI-Activity/Operational"},
}

// channelServices is serviceChannels reversed, keyed by channel as
// Windows spells it and in lower case (for senders that change the case).
var channelServices = func() map[string][]string {
	m := map[string][]string{}
	for s, chans := range serviceChannels {
		for _, c := range chans {
			m[c] = append(m[c], s)
			if k := strings.ToLower(c); k != c {
				m[k] = append(m[k], s)
			}
		}
	}
	return m
}()

// sysmonCategories maps Sysmon event ids to Sigma categories (pySigma's
// sysmon pipeline).
var sysmonCategories = map[int][]string{
	1: {"process_creation"}, 2: {"file_change"}, 3: {"network_connection"},
	4: {"sysmon_status"}, 5: {"process_termination"}, 6: {"driver_load"},
	7: {"image_load"}, 8: {"create_remote_thread"}, 9: {"raw_access_thread"},
	10: {"process_access"}, 11: {"file_event"},
	12: {"registry_add", "registry_delete", "registry_event"},
	13: {"registry_set", "registry_event"},
	14: {"registry_rename", "registry_event"},
	15: {"create_stream_hash"}, 16: {"sysmon_status"}, 17: {"pipe_created"},
	18: {"pipe_created"}, 19: {"wmi_event"}, 20: {"wmi_event"}, 21: {"wmi_event"},
	22: {"dns_query"}, 23: {"file_delete"}, 24: {"clipboard_capture"},
	25: {"process_tampering"}, 26: {"file_delete"}, 27: {"file_block_executable"},
	28: {"file_block_shredding"}, 29: {"file_executable_detected"},
	255: {"sysmon_error"},
}

const (
	chanSysmon       = "microsoft-windows-sysmon/operational"
	chanSecurity     = "security"
	chanPowerShell   = "microsoft-windows-powershell/operational"
	chanPowerShellCo = "powershellcore/operational"
	chanPSClassic    = "windows powershell"
)

// windowsCategories are the Windows categories some event can carry.
var windowsCategories = func() map[string]bool {
	m := map[string]bool{"ps_script": true, "ps_module": true, "ps_classic_start": true,
		"ps_classic_provider_start": true, "ps_classic_script": true}
	for _, cs := range sysmonCategories {
		for _, c := range cs {
			m[c] = true
		}
	}
	return m
}()

// Generic (product-less) categories fed by network and server logs.
var genericCategories = map[string]bool{"firewall": true, "proxy": true, "webserver": true, "dns": true, "antivirus": true}

var linuxServices = map[string]bool{"syslog": true, "auth": true, "sshd": true, "sudo": true, "cron": true,
	"vsftpd": true, "clamav": true, "guacamole": true, "auditd": true}

// genericServices are product-less services (web server error logs).
var genericServices = map[string]bool{"apache": true, "nginx": true}

// live reports whether some event can ever carry the logsource; rules of
// other logsources are dormant.
func live(ls Logsource) bool {
	switch ls.Product {
	case "", ProductMamori:
		return (ls.Category == "" || genericCategories[ls.Category] || windowsCategories[ls.Category]) &&
			(ls.Service == "" || genericServices[ls.Service] || linuxServices[ls.Service] || serviceChannels[ls.Service] != nil)
	case "windows":
		return (ls.Category == "" || windowsCategories[ls.Category]) &&
			(ls.Service == "" || serviceChannels[ls.Service] != nil)
	case "linux":
		return (ls.Category == "" || genericCategories[ls.Category]) && (ls.Service == "" || linuxServices[ls.Service])
	case "zeek":
		return ls.Category == "" || genericCategories[ls.Category]
	case "fortigate":
		return (ls.Category == "" || genericCategories[ls.Category]) && (ls.Service == "" || ls.Service == "event")
	}
	return false
}

// variants lists the field-mapping variants a logsource compiles to.
func variants(ls Logsource) []string {
	if (ls.Product == "windows" || ls.Product == "") && ls.Category == "process_creation" && ls.Service == "" {
		return []string{"", variantAudit}
	}
	return []string{""}
}

type catv struct{ cat, variant string }

// sources are the logsource values one event carries.
type sources struct {
	prods [3]string
	np    int
	cats  [6]catv
	nc    int
	svcs  [10]string
	ns    int
}

func (s *sources) prod(p string) {
	if s.np < len(s.prods) {
		s.prods[s.np] = p
		s.np++
	}
}

func (s *sources) cat(c, variant string) {
	if s.nc < len(s.cats) {
		s.cats[s.nc] = catv{c, variant}
		s.nc++
	}
}

func (s *sources) svc(v string) {
	for i := 0; i < s.ns; i++ {
		if s.svcs[i] == v {
			return
		}
	}
	if s.ns < len(s.svcs) {
		s.svcs[s.ns] = v
		s.ns++
	}
}

// route computes the logsources of an event from its fields.
func route(e *event.Event, s *sources) {
	*s = sources{}
	s.prod(ProductMamori)
	if ch, ok := e.Get(event.FieldWinChannel); ok {
		routeWindows(e, ch, s)
		return
	}
	get := func(n string) string { v, _ := e.Get(n); return v }
	module := get(event.FieldEventModule)
	obsType := get(event.FieldObserverType)
	app := strings.ToLower(get(event.FieldProcessName))
	if app == "" {
		app = strings.ToLower(get(event.FieldLogSyslogAppName))
	}
	if _, ok := e.Get(event.FieldDNSQuestion); ok {
		s.cat("dns", "")
	}
	if get(event.FieldCategory) == "malware" {
		s.cat("antivirus", "")
	}
	switch {
	case module == "zeek":
		s.prod("zeek")
		if ds := get(event.FieldEventDataset); strings.HasPrefix(ds, "zeek.") {
			s.svc(ds[len("zeek."):])
		}
		return
	case module == "squid":
		s.cat("proxy", "")
		return
	case module == "apache" || module == "nginx":
		s.cat("webserver", "")
		s.svc(module)
		return
	case obsType == "firewall":
		s.cat("firewall", "")
		if get(event.FieldObserverProduct) == "FortiGate" {
			s.prod("fortigate")
			if get("fortigate.type") == "event" {
				s.svc("event")
			}
			if get("fortigate.subtype") == "webfilter" {
				s.cat("proxy", "")
			}
		}
		if get("panos.subtype") == "url" {
			s.cat("proxy", "")
		}
		return
	case obsType != "" || module == "suricata":
		return // sensors and appliances are not Linux hosts
	}
	msg := get(event.FieldMessage)
	if t, ok := e.Get("kv.type"); ok && t != "" && strings.HasPrefix(msg, "audit(") || app == "auditd" || app == "audispd" {
		s.prod("linux")
		s.svc("auditd")
		return
	}
	if app == "" && get(event.FieldLogSyslogFacility) == "" {
		return // not a syslog line: nothing says it comes from a Linux host
	}
	s.prod("linux")
	s.svc("syslog")
	switch {
	case strings.HasPrefix(app, "sshd"):
		s.svc("sshd")
		s.svc("auth")
	case app == "sudo":
		s.svc("sudo")
		s.svc("auth")
	case app == "cron" || app == "crond":
		s.svc("cron")
	case app == "vsftpd":
		s.svc("vsftpd")
	case app == "clamd" || app == "freshclam" || app == "clamscan" || strings.HasPrefix(app, "clamav"):
		s.svc("clamav")
		if strings.HasSuffix(msg, " FOUND") {
			s.cat("antivirus", "")
		}
	case app == "guacd" || strings.HasPrefix(app, "guacamole"):
		s.svc("guacamole")
	case app == "apache2" || app == "httpd" || app == "apache":
		s.svc("apache")
	case app == "nginx":
		s.svc("nginx")
	case app == "su" || app == "login" || app == "passwd" || app == "systemd-logind" || strings.HasPrefix(app, "pam"):
		s.svc("auth")
	}
	if f := get(event.FieldLogSyslogFacility); f == "4" || f == "10" {
		s.svc("auth")
	}
}

func routeWindows(e *event.Event, ch string, s *sources) {
	s.prod("windows")
	svcs, ok := channelServices[ch]
	if !ok {
		ch = strings.ToLower(ch)
		svcs = channelServices[ch]
	}
	for _, svc := range svcs {
		s.svc(svc)
	}
	idText, _ := e.Get(event.FieldWinEventID)
	id, err := strconv.Atoi(idText)
	if err != nil {
		return
	}
	eq := func(c string) bool { return strings.EqualFold(ch, c) }
	switch {
	case eq(chanSysmon):
		for _, c := range sysmonCategories[id] {
			s.cat(c, "")
		}
	case eq(chanSecurity):
		if id == 4688 {
			s.cat("process_creation", variantAudit)
		}
	case eq(chanPowerShell) || eq(chanPowerShellCo):
		switch id {
		case 4104:
			s.cat("ps_script", "")
		case 4103:
			s.cat("ps_module", "")
		}
	case eq(chanPSClassic):
		switch id {
		case 400:
			s.cat("ps_classic_start", "")
		case 600:
			s.cat("ps_classic_provider_start", "")
		case 800:
			s.cat("ps_classic_script", "")
		}
	}
}

// Field mapping tables: Sigma field name → event fields (the first one set
// is the value).
var (
	windowsSystemFields = map[string]string{
		"EventID":         event.FieldWinEventID,
		"Channel":         event.FieldWinChannel,
		"Provider_Name":   event.FieldWinProvider,
		"Computer":        event.FieldWinComputer,
		"Security_UserID": event.FieldWinUserID,
		"EventRecordID":   event.FieldWinRecordID,
	}
	// sigma-cli's windows-audit pipeline renames for Security 4688.
	windowsAuditFields = map[string]string{
		"Image":       "NewProcessName",
		"ParentImage": "ParentProcessName",
		"LogonId":     "SubjectLogonId",
		"Details":     "NewValue",
	}
	proxyFields = map[string][]string{
		"c-uri":           {event.FieldURLOriginal},
		"cs-uri":          {event.FieldURLOriginal},
		"c-uri-query":     {event.FieldURLQuery},
		"cs-uri-query":    {event.FieldURLQuery},
		"c-uri-stem":      {event.FieldURLPath},
		"cs-uri-stem":     {event.FieldURLPath},
		"c-uri-extension": {"url.extension"},
		"c-uri-scheme":    {event.FieldURLScheme},
		"c-useragent":     {event.FieldUserAgent},
		"cs-user-agent":   {event.FieldUserAgent},
		"cs-host":         {event.FieldURLDomain},
		"r-dns":           {event.FieldURLDomain},
		"cs-method":       {event.FieldHTTPMethod},
		"sc-status":       {event.FieldHTTPStatus},
		"cs-referrer":     {event.FieldHTTPReferrer},
		"cs-referer":      {event.FieldHTTPReferrer},
		"cs-cookie":       {"http.request.cookie"},
		"c-ip":            {event.FieldSourceIP},
		"src_ip":          {event.FieldSourceIP},
		"dst_ip":          {event.FieldDestIP},
		"cs-username":     {event.FieldUserName},
		"sc-bytes":        {event.FieldHTTPResponseBytes, event.FieldHTTPBytes},
		"cs-version":      {event.FieldHTTPVersion},
		"cs-content-type": {"http.request.mime_type"},
	}
	webserverFields = merge(proxyFields, map[string][]string{
		"cs-host": {event.FieldURLDomain, event.FieldDestDomain},
	})
	dnsFields = map[string][]string{
		"query":         {event.FieldDNSQuestion},
		"record_type":   {event.FieldDNSQuestionType},
		"answer":        {"dns.answers.data"},
		"response_code": {event.FieldDNSResponseCode},
		"src_ip":        {event.FieldSourceIP},
		"dst_ip":        {event.FieldDestIP},
	}
	firewallFields = map[string][]string{
		"src_ip":   {event.FieldSourceIP},
		"dst_ip":   {event.FieldDestIP},
		"src_port": {event.FieldSourcePort},
		"dst_port": {event.FieldDestPort},
		"action":   {event.FieldAction},
		"blocked":  {event.FieldType}, // "denied"
		"username": {event.FieldUserName},
		"protocol": {event.FieldNetworkTransport},
	}
	antivirusFields = map[string][]string{
		"Signature": {event.FieldRuleName, "fortigate.virus", "panos.threat.name", event.FieldMessage},
		"Filename":  {event.FieldFilePath, event.FieldFileName, event.FieldURLOriginal, event.FieldMessage},
		"Hostname":  {event.FieldHostName},
		"User":      {event.FieldUserName},
	}
	zeekFields = map[string][]string{
		"id.orig_h":         {event.FieldSourceIP},
		"id.orig_p":         {event.FieldSourcePort},
		"id.resp_h":         {event.FieldDestIP},
		"id.resp_p":         {event.FieldDestPort},
		"query":             {event.FieldDNSQuestion},
		"qtype_name":        {event.FieldDNSQuestionType},
		"rcode_name":        {event.FieldDNSResponseCode},
		"uri":               {event.FieldURLOriginal},
		"c-uri":             {event.FieldURLOriginal},
		"host":              {event.FieldURLDomain},
		"method":            {event.FieldHTTPMethod},
		"status_code":       {event.FieldHTTPStatus},
		"user_agent":        {event.FieldUserAgent},
		"c-useragent":       {event.FieldUserAgent},
		"referrer":          {event.FieldHTTPReferrer},
		"response_body_len": {event.FieldHTTPBytes},
		"server_name":       {event.FieldTLSServerName},
		"username":          {event.FieldUserName},
		"domainname":        {event.FieldUserDomain},
		"uid":               {"zeek.uid"},
		"proto":             {event.FieldNetworkTransport},
		"service":           {event.FieldNetworkProtocol, "zeek.service"},
		"mailfrom":          {event.FieldEmailFrom},
		"rcptto":            {event.FieldEmailTo},
		"subject":           {event.FieldEmailSubject},
		"total_bytes":       {event.FieldFileSize},
	}
	fortigateFields = map[string][]string{
		"srcip":      {event.FieldSourceIP},
		"dstip":      {event.FieldDestIP},
		"srcport":    {event.FieldSourcePort},
		"dstport":    {event.FieldDestPort},
		"user":       {event.FieldUserName},
		"action":     {event.FieldAction},
		"msg":        {event.FieldMessage},
		"policyid":   {event.FieldRuleID},
		"policyname": {event.FieldRuleName},
		"logid":      {event.FieldEventCode},
		"level":      {event.FieldLogLevel},
		"devname":    {event.FieldObserverHostname},
		"devid":      {event.FieldObserverSerial},
		"hostname":   {event.FieldURLDomain},
		"url":        {event.FieldURLOriginal},
		"qname":      {event.FieldDNSQuestion},
	}
)

func merge(a, b map[string][]string) map[string][]string {
	m := make(map[string][]string, len(a)+len(b))
	for k, v := range a {
		m[k] = v
	}
	for k, v := range b {
		m[k] = v
	}
	return m
}

// mapField resolves a Sigma field name for a logsource and variant.
func mapField(ls Logsource, variant, f string) []string {
	if ls.Product == "windows" || (ls.Product == "" && windowsCategories[ls.Category]) {
		if n, ok := windowsSystemFields[f]; ok {
			return []string{n}
		}
		if variant == variantAudit {
			if n, ok := windowsAuditFields[f]; ok {
				f = n
			}
		}
		names := []string{event.FieldWinEventDataPrefix + f}
		// Some builtin channels (Windows Defender) name their data with
		// spaces ("Threat Name"); Sigma rules write them without.
		if sp := camelSpaced(f); ls.Service != "" && sp != f {
			names = append(names, event.FieldWinEventDataPrefix+sp)
		}
		return names
	}
	var table map[string][]string
	prefix := ""
	switch {
	case ls.Category == "proxy":
		table = proxyFields
	case ls.Category == "webserver" || ls.Service == "apache" || ls.Service == "nginx":
		table = webserverFields
	case ls.Category == "dns":
		table = dnsFields
	case ls.Category == "firewall":
		table = firewallFields
	case ls.Category == "antivirus":
		table = antivirusFields
	case ls.Product == "zeek":
		table, prefix = zeekFields, "zeek."
	case ls.Product == "fortigate":
		table, prefix = fortigateFields, "fortigate."
	case ls.Product == "linux":
		prefix = "kv." // auditd and sudo key=value pairs
	}
	if n, ok := table[f]; ok {
		return n
	}
	if prefix == "" || (strings.Contains(f, ".") && ls.Product != "zeek") {
		return []string{f} // ECS names pass through; Zeek keeps its own dots under zeek.
	}
	return []string{prefix + f}
}

// camelSpaced puts a space between a lower-case letter and the upper-case
// letter after it: "ThreatName" → "Threat Name".
func camelSpaced(f string) string {
	var b strings.Builder
	for i := 0; i < len(f); i++ {
		c := f[i]
		if i > 0 && 'A' <= c && c <= 'Z' && 'a' <= f[i-1] && f[i-1] <= 'z' {
			b.WriteByte(' ')
		}
		b.WriteByte(c)
	}
	return b.String()
}
