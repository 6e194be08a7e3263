# NixOS module for tailhorizon: CoreDNS with the tailnet, mdns and fallback
# plugins, run as a systemd service after tailscaled, hardened as
# docs/systemd/tailhorizon.service is. Use:
#
#   imports = [ ./tailhorizon.nix ];
#   services.tailhorizon = {
#     enable = true;
#     package = pkgs.callPackage ./package.nix { src = ./tailhorizon; };
#     configFile = ./device.Corefile;   # or: corefile = ''...'';
#   };
#
# The test suite parses this file and evaluates it with stand-ins for lib
# and pkgs (test/recipes_test.go); it is not evaluated against nixpkgs there.
{ config, lib, pkgs, ... }:

let
  cfg = config.services.tailhorizon;
in
{
  options.services.tailhorizon = {
    enable = lib.mkEnableOption "tailhorizon, CoreDNS with the tailnet split-horizon plugins";

    package = lib.mkOption {
      type = lib.types.package;
      description = "The tailhorizon package, which provides bin/coredns (see package.nix).";
    };

    corefile = lib.mkOption {
      type = lib.types.lines;
      default = "";
      example = ''
        example.org:5300 {
            bind 127.0.0.1
            fallback {
                to 192.0.2.53
            }
            tailnet {
                fallthrough
            }
        }
      '';
      description = "The Corefile's text; not used when configFile is set.";
    };

    configFile = lib.mkOption {
      type = lib.types.path;
      default = pkgs.writeText "Corefile" cfg.corefile;
      defaultText = lib.literalExpression ''pkgs.writeText "Corefile" config.services.tailhorizon.corefile'';
      description = "The Corefile coredns runs.";
    };

    bindPrivilegedPorts = lib.mkOption {
      type = lib.types.bool;
      default = false;
      description = "Give the service CAP_NET_BIND_SERVICE, for a Corefile that serves a port below 1024 such as 53.";
    };
  };

  config = lib.mkIf cfg.enable {
    systemd.services.tailhorizon = {
      description = "tailhorizon DNS (CoreDNS with tailnet, mdns and fallback)";
      wantedBy = [ "multi-user.target" ];
      # After tailscaled, but neither stopped nor restarted with it: the
      # tailnet plugin reconnects to tailscaled by itself.
      wants = [ "tailscaled.service" ];
      after = [ "tailscaled.service" ];

      serviceConfig = {
        ExecStart = "${cfg.package}/bin/coredns -conf ${cfg.configFile}";
        ExecReload = "${pkgs.coreutils}/bin/kill -USR1 $MAINPID";
        Restart = "on-failure";
        RestartSec = "2s";

        # tailscaled's socket is mode 0666; a read-only LocalAPI connection
        # is all the tailnet plugin needs.
        DynamicUser = true;
        StateDirectory = "tailhorizon";
        StateDirectoryMode = "0700";

        AmbientCapabilities = lib.optional cfg.bindPrivilegedPorts "CAP_NET_BIND_SERVICE";
        CapabilityBoundingSet = "CAP_NET_BIND_SERVICE";
        NoNewPrivileges = true;
        ProtectSystem = "strict";
        ProtectHome = true;
        PrivateTmp = true;
        PrivateDevices = true;
        PrivateMounts = true;
        ProtectClock = true;
        ProtectControlGroups = true;
        ProtectHostname = true;
        ProtectKernelLogs = true;
        ProtectKernelModules = true;
        ProtectKernelTunables = true;
        ProtectProc = "invisible";
        LockPersonality = true;
        MemoryDenyWriteExecute = true;
        RestrictNamespaces = true;
        RestrictRealtime = true;
        RestrictSUIDSGID = true;
        RestrictAddressFamilies = "AF_UNIX AF_INET AF_INET6 AF_NETLINK";
        SystemCallArchitectures = "native";
        SystemCallFilter = "@system-service";
        SystemCallErrorNumber = "EPERM";
        UMask = "0077";
        LimitNOFILE = 65536;
      };
    };
  };
}
